"""The commands' library side: each function is what one CLI command does, testable without click."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import sessionmaker

from .config import Settings
from .exceptions import DatabaseError
from .pipeline import RunOptions, RunSummary, run_batch
from .store.messages import safe_url
from .store.session import has_schema, init_db, make_engine

if TYPE_CHECKING:
    from .reports import ReportsWritten

log = logging.getLogger(__name__)


def run_job(settings: Settings, options: RunOptions, *, progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None, classifier=None,
            render: bool = True) -> tuple[RunSummary, "ReportsWritten"]:
    """Process ROOT into the database, then render reports for every ad with new results, the reports of their
    campaigns, the index and the summaries.

    Args:
        settings: database, reports folder, model.
        options: the batch options.
        progress: called with the number of files handled since its last call.
        on_total: called once with the number of image files and recordings found (for a progress bar), from
            the run's one walk of ROOT.
        classifier: a ready ``Classifier`` (tests pass a tiny one); loaded from ``settings`` when None.
            The Ray engine (``options.engine="ray"``) ignores it: its actors load ``settings.model``.
        render: render the reports of the ads with new results.

    Returns:
        The run's summary and what was rendered (nothing when ``render`` is false or no ad has new results).
    """
    from .classifier import load_classifier, locate_model
    from .reports import ReportsWritten

    options.validate()
    model = None
    if options.engine == "ray":
        from .engines.ray_engine import actor_gpu, run_batch_ray

        model = locate_model(settings.model, sha256=settings.model_sha256, backend=settings.backend,
                             gpu=actor_gpu(options))
    elif classifier is None:
        classifier = load_classifier(settings.model, sha256=settings.model_sha256, batch_size=options.batch_size,
                                     backend=settings.backend)
    engine = make_engine(settings.db)
    try:
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        if model is not None:
            summary = run_batch_ray(factory, model, options, progress=progress, on_total=on_total)
        else:
            summary = run_batch(factory, classifier, options, progress=progress, on_total=on_total)
        written = ReportsWritten()
        if render and summary.ads_with_new_results:
            written = render_reports(factory, settings, ads=summary.ads_with_new_results)
        return summary, written
    finally:
        engine.dispose()


def render_reports(factory: sessionmaker, settings: Settings, *, ads: list[tuple[str, str]] | None = None,
                   campaign: str | None = None, ad: str | None = None) -> "ReportsWritten":
    """Render the reports of ``ads`` (all when None; only those of ``campaign`` and named ``ad`` where given)
    with the options in ``settings``, then replace the rows of ``ad_share_estimates`` with the shares they
    state (every shown ad and campaign of the database)."""
    from .aggregate import share_estimate_rows
    from .reports import ReportOptions, render_reports as render
    from .store.estimates import replace_share_estimates

    options = ReportOptions(min_faces=settings.min_faces, paper=settings.paper, examples=settings.examples,
                            workers=settings.report_workers)
    with factory() as session:
        written = render(session, Path(settings.reports), ads=ads, campaign=campaign, ad=ad, options=options)
    if written.report_set is not None:
        with factory.begin() as session:
            replace_share_estimates(session, share_estimate_rows(written.report_set))
    return written


def report_job(settings: Settings, *, campaign: str | None = None, ad: str | None = None) -> "ReportsWritten":
    """Render reports from the database alone (no images needed, except for ``settings.examples``): the ads
    (of ``campaign``, or named ``ad``), their campaigns' reports, the index and the summaries."""
    engine = make_engine(settings.db)
    try:
        if not has_schema(engine):
            raise DatabaseError(f"{safe_url(settings.db)} holds no emotion-batch results; run `emotion-batch run ROOT` first")
        init_db(engine)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        return render_reports(factory, settings, campaign=campaign, ad=ad)
    finally:
        engine.dispose()


# ---- schema, exports, retention --------------------------------------------------------------------


def _results_engine(settings: Settings):
    """An engine on a database that holds results at the current schema revision."""
    from .store.schema import schema_status

    engine = make_engine(settings.db)
    try:
        if not has_schema(engine):
            raise DatabaseError(f"{safe_url(settings.db)} holds no emotion-batch results; run `emotion-batch run ROOT` first")
        problem = schema_status(engine).problem()
        if problem:
            from .exceptions import SchemaError

            raise SchemaError(problem)
    except BaseException:
        engine.dispose()
        raise
    return engine


def db_status_job(settings: Settings) -> dict:
    """The schema state of the database: ``state``, ``current`` and ``head`` revisions, and the URL."""
    from .store.schema import schema_status

    engine = make_engine(settings.db)
    try:
        return schema_status(engine).as_dict()
    finally:
        engine.dispose()


def db_upgrade_job(settings: Settings, *, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database to ``revision`` under the run lock; return the revisions before and after."""
    from .store.schema import upgrade
    from .store.session import run_lock

    engine = make_engine(settings.db)
    try:
        with run_lock(engine):
            return upgrade(engine, revision)
    finally:
        engine.dispose()


def export_job(settings: Settings, dataset: str, out: str, *, fmt: str | None = None, filters=None,
               progress: Callable[[int], None] | None = None):
    """Stream one dataset (``exports.DATASETS``) of the database into a CSV, Parquet or Excel file."""
    from .exports import export_rows
    from .store.queries import Filters

    engine = _results_engine(settings)
    try:
        with sessionmaker(bind=engine)() as session:
            return export_rows(session, dataset, out, fmt=fmt, filters=filters or Filters(), progress=progress)
    finally:
        engine.dispose()


def prune_job(settings: Settings, older_than: str, *, dry_run: bool = False, now=None):
    """Remove results processed longer than ``older_than`` (``90d``, ``12w``, ``36h``) ago, in one transaction.

    Returns:
        ``(removed, cutoff)``: a ``retention.Removed`` and the UTC cutoff. A dry run counts and rolls back.
    """
    import datetime as dt

    from .store.retention import parse_age, prune_older_than
    from .store.session import run_lock

    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - parse_age(older_than)
    engine = _results_engine(settings)
    try:
        with run_lock(engine), sessionmaker(bind=engine)() as session:
            removed = prune_older_than(session, cutoff)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        return removed, cutoff
    finally:
        engine.dispose()


def delete_job(settings: Settings, *, campaign: str | None = None, ad: str | None = None, dry_run: bool = False):
    """Remove every row of a campaign (or of one ad) in one transaction; a dry run counts and rolls back."""
    from .store.retention import delete_results
    from .store.session import run_lock

    engine = _results_engine(settings)
    try:
        with run_lock(engine), sessionmaker(bind=engine)() as session:
            removed = delete_results(session, campaign=campaign, ad=ad)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        return removed
    finally:
        engine.dispose()
