"""What the commands of ``cli.py`` share: the group that turns library errors into messages, help in sections,
progress on stderr with a quiet twin, the dry run before a removal, the options, logging, and the summary lines
of runs and reports. Click code only; nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

import click

from .exceptions import EmotionBatchError


class Commands(click.Group):
    """The command group: a library error (``EmotionBatchError``) becomes its one-line message and exit 1, here
    once for every command (the library raises, it never exits)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmotionBatchError as exc:
            raise click.ClickException(str(exc)) from exc


class SectionedCommand(click.Command):
    """A command whose --help lists its options under headings: ``sections`` maps each heading, in order, to the
    parameter names of its options (``help`` for -h/--help); an option in none of them comes last, under 'Other
    options'."""

    def __init__(self, *args, sections: dict[str, tuple[str, ...]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sections = sections

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_option = self.get_help_option(ctx)
        records = {"help" if p is help_option else p.name: p.get_help_record(ctx)
                   for p in self.get_params(ctx) if isinstance(p, click.Option)}
        for heading, names in [*self.sections.items(), ("Other options", tuple(records))]:
            rows = [records.pop(name) for name in names if records.get(name)]
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


class Progress:
    """Progress of long work on stderr, called with the number of items done since the last call: a bar once
    ``total`` is known (run's files), a running count otherwise (export's rows)."""

    def __init__(self, label: str, stack: contextlib.ExitStack) -> None:
        self.label, self.count, self._stack, self._bar = label, 0, stack, None
        stack.callback(self._end_count)

    def _end_count(self) -> None:
        if self.count:  # the running count's line ends with the block
            click.echo("", err=True)

    def total(self, length: int) -> None:
        self._bar = self._stack.enter_context(
            click.progressbar(length=length, label=self.label, file=sys.stderr, show_pos=True))

    def __call__(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)
            return
        self.count += n
        click.echo(f"\r{self.count:,} {self.label}", nl=False, err=True)


class QuietProgress:
    """The quiet twin of ``Progress``: the same calls, nothing drawn."""

    def total(self, length: int) -> None:
        pass

    def __call__(self, n: int) -> None:
        pass


@contextlib.contextmanager
def progress(label: str, *, quiet: bool) -> Iterator[Progress | QuietProgress]:
    """``Progress`` on stderr for the length of the block; its quiet twin where ``quiet`` (``-q``, ``--json``)
    or where stderr is no terminal (cron, a pipe)."""
    if quiet or not sys.stderr.isatty():
        yield QuietProgress()
        return
    with contextlib.ExitStack() as stack:
        yield Progress(label, stack)


def dry_run_first(job, question, *, dry_run: bool, yes: bool):
    """What ``job(True)``, a dry run, counts; unless ``dry_run``, what ``job(False)`` removes once the user has
    confirmed ``question(counted)`` (unless ``yes``)."""
    counted = job(True)
    if dry_run:
        return counted
    if not yes:
        click.confirm(f"emotion-batch: remove {question(counted)}?", abort=True, err=True)
    return job(False)


def db_option(f=None, *, help: str = "SQLAlchemy database URL  [default: sqlite:///emotion_batch.sqlite]"):
    """``--db URL`` (or ``EMOTION_BATCH_DB``); ``@db_option(help=...)`` says what a command does with it."""
    option = click.option("--db", "db", metavar="URL", envvar="EMOTION_BATCH_DB", show_envvar=True, help=help)
    return option if f is None else option(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")(f)


def verbose_option(f):
    return click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")(f)


def output_options(f):
    f = json_option(verbose_option(f))
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line (for cron).")(f)


def removal_options(f):
    """``--dry-run``, ``-y/--yes`` and the output options of a command that removes rows."""
    f = output_options(f)
    f = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (scripts, cron).")(f)
    return click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")(f)


def reports_option(f):
    f = click.option("--report-workers", type=click.IntRange(min=0),
                     help="Processes rendering reports  [default: one per core; 0: none]")(f)
    f = click.option("--examples", is_flag=True,
                     help="Show crops of the most confident faces per expression in the reports (personal data; "
                          "needs the images under the run's ROOT).")(f)
    f = click.option("--paper", type=click.Choice(["a4", "letter"]), default="a4", show_default=True,
                     help="Page size of the PDF reports.")(f)
    f = click.option("--min-faces", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Hide emotion shares of groups with fewer faces than this.")(f)
    return click.option("--reports", "reports", metavar="DIR", envvar="EMOTION_BATCH_REPORTS", show_envvar=True,
                        help="Folder for the HTML and PDF reports  [default: ./reports]")(f)


def model_options(f):
    f = click.option("--model-sha256", metavar="HEX", help="Expected sha256 of a --model file.")(f)
    return click.option("--model", metavar="NAME|PATH", help="Bundled model name or .keras file  [default: bundled default]")(f)


def backend_option(f):
    return click.option("--backend", type=click.Choice(["auto", "keras", "litert"]), default="auto", show_default=True,
                        help="How the model runs: litert (its int8 .tflite file, CPU, no TensorFlow), keras "
                             "(TensorFlow, a GPU where present); auto: litert without a GPU when the model has one.")(f)


def detector_options(f):
    f = click.option("--min-face-size", "min_face", type=click.FloatRange(min=1), metavar="PX",
                     help="Smallest face side to report, in pixels of the searched image (photos are searched at "
                          "most 1920 px on their long side); larger is faster with the blazeface detectors and haar; "
                          "given, BlazeFace also searches finer scales down to faces this small (crowds, slower)  "
                          "[default: 16; BlazeFace's finer scale then resolves faces of about 1/30 of the long side; "
                          "haar 24]")(f)
    f = click.option("--min-score", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     help="Detection threshold  [default: the detector's own]")(f)
    from .faces import DETECTORS  # numpy only: --help stays light

    return click.option("--detector", type=click.Choice(DETECTORS), default=DETECTORS[0], show_default=True,
                        help="Face detector: blazeface-dual runs both BlazeFace models (close-ups to crowds); "
                             "'none' treats every image as one face crop.")(f)


def reports_line(written, folder: str) -> str:
    """What a command wrote, for its summary line."""
    line = (f"{len(written.ads) // 2} ad reports, {len(written.campaigns) // 2} campaign reports"
            f"{', index and summaries' if written.index else ''} in {folder}")
    return line + (f"; open {os.path.join(folder, 'index.html')}" if written.index else "")


def reports_json(written) -> dict:
    return {"reports": [str(p) for p in written.ads], "campaign_reports": [str(p) for p in written.campaigns],
            "index": [str(p) for p in written.index], "report_seconds": round(written.seconds, 3)}


def _skipped(summary) -> str:
    """The files a run skipped that a user may not expect it to, for its summary line."""
    parts = [f"{summary.special_skipped} special files or dangling links"] if summary.special_skipped else []
    if summary.links_skipped:
        parts.append(f"{summary.links_skipped} links out of ROOT (--follow-symlinks)")
    return f"skipped {', '.join(parts)}; " if parts else ""


def _videos(summary) -> str:
    """The videos of a run, for its summary line (nothing when ROOT holds none)."""
    if not summary.videos_found:
        return ""
    return (f"{summary.videos_found} videos found, {summary.videos_processed} processed ({summary.videos_ok} ok, "
            f"{summary.videos_no_face} no face, {summary.videos_failed} failed), {summary.videos_unchanged} unchanged, "
            f"{summary.video_frames} frames with a face; ")


def run_line(summary) -> str:
    """A run's summary line, up to the reports it wrote."""
    return (f"{summary.images_found} images found, {summary.processed} processed ({summary.ok} ok, "
            f"{summary.no_face} no face, {summary.unreadable} unreadable, {summary.unsupported} unsupported), "
            f"{summary.unchanged} unchanged, {summary.faces} faces in {summary.seconds:.1f} s "
            f"({summary.images_per_second:.1f} images/s); {_videos(summary)}{_skipped(summary)}")
