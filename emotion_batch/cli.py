"""The ``emotion-batch`` command line: click code only; each command calls one library function.

Nothing here imports TensorFlow at module level, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import datetime
import json
import os
import sys

import click

from . import __version__
from .cli_common import (Commands, SectionedCommand, backend_option, db_option, detector_options, dry_run_first,
                         json_option, model_options, output_options, progress, removal_options, reports_json,
                         reports_line, reports_option, run_line, setup_logging, verbose_option)
from .exceptions import EmotionBatchError

#: Exit code of a run that finished although worker processes died (``runs.status`` ``workers_died``).
EXIT_WORKERS_DIED = 3


def _quiet_tensorflow(verbose: int = 0, *, model: str | None = None, backend: str | None = None) -> None:
    """Start TensorFlow with its native start-up lines (oneDNN, CUDA probing) muted unless ``-v``.

    TensorFlow 2.21 writes them from C++ through absl, which ignores ``TF_CPP_MIN_LOG_LEVEL``, so the
    process's stderr file descriptor is pointed at /dev/null while TensorFlow initialises.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose:
        return
    if backend is not None:  # a command whose model may run on LiteRT: no TensorFlow for it to quiet
        from .classifier import locate_model

        try:
            if locate_model(model, backend=backend).backend == "litert":
                return
        except EmotionBatchError:
            pass  # the command itself reports the bad model or backend
    from .native import quiet_native_stderr

    with quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_logical_devices()


#: The headings of ``run --help``, in the order a run meets them, and their options' parameter names.
RUN_SECTIONS = {
    "Input": ("reprocess", "follow_symlinks", "max_pixels", "video_fps"),
    "Detection": ("detector", "min_score", "min_face"),
    "Model": ("model", "model_sha256", "backend", "batch_size"),
    "Storage": ("db",),
    "Reports": ("reports", "no_reports", "min_faces", "paper", "examples", "report_workers"),
    "Engine": ("engine", "workers", "ray_address", "ray_gpus"),
    "Output": ("quiet", "as_json", "verbose", "help"),
}


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="emotion-batch")
def cli() -> None:
    """Apparent facial expressions in ad-campaign photos, stored in SQL and reported per ad.

    ROOT holds one folder per campaign, one folder per ad inside it, and images anywhere below:
    ROOT/<campaign>/<ad>/**/<image>. The scores describe apparent expressions, not feelings.
    """


@cli.command(cls=SectionedCommand, sections=RUN_SECTIONS)
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@click.option("--reprocess", is_flag=True, help="Process every image and video again, changed or not.")
@click.option("--follow-symlinks", is_flag=True,
              help="Also read image files that symbolic links point to outside ROOT (skipped and counted by default).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=120_000_000, show_default=True,
              help="Refuse larger images as 'unsupported' (decompression bombs).")
@click.option("--video-fps", type=click.FloatRange(min=0, max=60, min_open=True), default=5.0, show_default=True,
              help="Frames sampled per second of a viewer recording (its faces are searched from 64 px up unless "
                   "--min-face-size is given).")
@detector_options
@model_options
@backend_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Faces per model call.")
@db_option
@reports_option
@click.option("--no-reports", is_flag=True, help="Store results only; render no reports.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes here; ray: Ray Data actors (pip install 'emotion-batch[ray]').")
@click.option("--workers", type=click.IntRange(min=0), help="Decode/detect processes (Ray actors with --engine ray)  [default: one per core; 0: none]")
@click.option("--ray-address", metavar="ADDRESS",
              help="With --engine ray: 'auto' or ray://HOST:10001 for a cluster  [default: a local Ray]")
@click.option("--ray-gpus", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --engine ray: GPUs per actor (0.25: four actors share a GPU).")
@output_options
def run(root, reprocess, follow_symlinks, max_pixels, video_fps, detector, min_score, min_face, model, model_sha256,
        backend, batch_size, db, reports, no_reports, min_faces, paper, examples, report_workers, engine, workers,
        ray_address, ray_gpus, quiet, verbose, as_json) -> None:
    """Find faces in new images and viewer videos under ROOT, classify them, store the results and render reports."""
    setup_logging(verbose, quiet)
    _quiet_tensorflow(verbose, model=model, backend=backend if engine == "local" else None)
    from .config import Settings
    from .jobs import run_job
    from .pipeline import RunOptions

    settings = Settings.from_options(db=db, reports=reports, min_faces=min_faces, model=model, model_sha256=model_sha256,
                                     backend=backend, paper=paper, examples=examples, report_workers=report_workers)
    options = RunOptions(root=root, detector=detector, batch_size=batch_size, workers=workers, reprocess=reprocess,
                         min_score=min_score, min_face=min_face, max_pixels=max_pixels, engine=engine,
                         follow_symlinks=follow_symlinks, video_fps=video_fps, ray_address=ray_address,
                         ray_gpus=ray_gpus)
    try:
        with progress("files", quiet=quiet or as_json) as bar:
            summary, written = run_job(settings, options, progress=bar, on_total=bar.total, render=not no_reports)
    except KeyboardInterrupt:
        click.echo("\nemotion-batch: interrupted; committed results are kept, the next run resumes.", err=True)
        sys.exit(130)
    if summary.worker_deaths:  # even with -q: cron mails it, someone should look (memory, a crashing decoder)
        click.echo(f"emotion-batch: warning: {summary.worker_deaths} worker processes died during the run; their "
                   f"images were retried, {len(summary.worker_killers)} recorded as unreadable "
                   f"(run {summary.run_id}, status workers_died)", err=True)
    if as_json:
        click.echo(json.dumps({**summary.as_dict(), **reports_json(written)}, indent=2, default=str))
    elif not quiet:
        for folder, error in summary.unreadable_folders:
            click.echo(f"warning: cannot read folder {folder}: {error}", err=True)
        click.echo(f"emotion-batch: {run_line(summary)}{reports_line(written, settings.reports)}")
    if summary.worker_deaths:
        sys.exit(EXIT_WORKERS_DIED)


@cli.command()
@db_option
@reports_option
@click.option("--campaign", help="Only this campaign.")
@click.option("--ad", help="Only this ad.")
@output_options
def report(db, reports, min_faces, paper, examples, report_workers, campaign, ad, quiet, verbose, as_json) -> None:
    """Render the HTML and PDF reports from the database alone (no images needed, except for --examples).

    Writes one report per ad and per campaign, index.html, summary.json, summary.csv and campaigns.csv.
    """
    setup_logging(verbose, quiet)
    from .config import Settings
    from .jobs import report_job

    settings = Settings.from_options(db=db, reports=reports, min_faces=min_faces, paper=paper, examples=examples,
                                     report_workers=report_workers)
    written = report_job(settings, campaign=campaign, ad=ad)
    if as_json:
        click.echo(json.dumps(reports_json(written), indent=2))
    elif not quiet:
        click.echo(f"emotion-batch: {reports_line(written, settings.reports)} ({written.seconds:.1f} s)")


DATASET_CHOICES = ("faces", "images", "failed-images", "ad-summary", "campaign-summary", "daily-trend",
                   "share-estimates", "videos", "video-frames", "second-trace")


@cli.group()
def db() -> None:
    """The database schema: its state, and upgrades through the migrations shipped in the package."""


@db.command("status")
@db_option
@json_option
def db_status(db, as_json) -> None:
    """Show the schema revision of the database and the newest one this emotion-batch knows."""
    from .config import Settings
    from .jobs import db_status_job

    status = db_status_job(Settings.from_options(db=db))
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"emotion-batch: {status['db']}: schema revision {status['current'] or 'none'}, "
               f"newest {status['head']} ({status['state']})")
    if status["problem"]:
        click.echo(status["problem"])


@db.command("upgrade")
@db_option
@click.option("--revision", default="head", show_default=True, help="Revision to migrate to.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
def db_upgrade(db, revision, quiet) -> None:
    """Bring the database schema up to date (back the database up first); an empty one gets the schema.

    Holds the run lock: a running batch job makes it stop at once with a message.
    """
    from .config import Settings
    from .jobs import db_upgrade_job
    from .store.messages import safe_url

    settings = Settings.from_options(db=db)
    before, after = db_upgrade_job(settings, revision=revision)
    if not quiet:
        change = f"already at revision {after}" if before == after else f"schema revision {before or 'none'} -> {after}"
        click.echo(f"emotion-batch: {safe_url(settings.db)}: {change}")


@cli.command("export")
@click.argument("dataset", type=click.Choice(DATASET_CHOICES))
@click.option("-o", "--out", required=True, metavar="FILE",
              help="File to write: .csv, .parquet or .xlsx ('-': CSV on stdout).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "xlsx"]), help="[default: from the extension of FILE]")
@click.option("--campaign", "campaigns", multiple=True, metavar="NAME", help="Only this campaign (repeatable).")
@click.option("--ad", "ads", multiple=True, metavar="NAME", help="Only ads of this name (repeatable).")
@click.option("--since", metavar="DATE", help="Only images (videos) processed from this UTC date (or date-time) on.")
@click.option("--until", metavar="DATE", help="Only images (videos) processed up to this UTC date (inclusive) or before a date-time.")
@db_option
@output_options
def export_data(dataset, out, fmt, campaigns, ads, since, until, db, quiet, verbose, as_json) -> None:
    """Write one view's rows (faces, images, failed images, the ad or campaign summary, the daily trend, the
    viewer videos, their frames, the second-by-second trace) to CSV, Parquet or Excel, streamed in chunks.

    Summaries count only the images and faces the filters select. (`emotion-batch export-model` exports models.)
    """
    setup_logging(verbose, quiet)
    from .config import Settings
    from .jobs import export_job
    from .store.queries import Filters

    filters = Filters.from_options(campaigns=campaigns, ads=ads, since=since, until=until)
    with progress("rows", quiet=quiet or as_json or out == "-") as rows:
        result = export_job(Settings.from_options(db=db), dataset, out, fmt=fmt, filters=filters, progress=rows)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2), err=out == "-")
    elif not quiet:
        sheets = f" on {result.sheets} worksheets" if result.sheets > 1 else ""
        click.echo(f"emotion-batch: {result.rows} {dataset} rows in {result.path} ({result.format}{sheets})",
                   err=out == "-")


@cli.command()
@click.option("--older-than", required=True, metavar="AGE",
              help="Remove results processed longer ago than this: 90d, 12w or 36h.")
@db_option
@removal_options
def prune(older_than, db, dry_run, yes, quiet, verbose, as_json) -> None:
    """Remove old results in one transaction: faces and images processed before the cutoff, then ads,
    campaigns and runs rows left empty. Image files are never touched."""
    setup_logging(verbose, quiet)
    from .config import Settings
    from .jobs import prune_job

    settings = Settings.from_options(db=db)
    now = datetime.datetime.now(datetime.timezone.utc)
    removed, cutoff = dry_run_first(lambda dry: prune_job(settings, older_than, dry_run=dry, now=now),
                                    lambda counted: f"{counted[0]} (processed before {counted[1]:%Y-%m-%d %H:%M} UTC)",
                                    dry_run=dry_run, yes=yes)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "cutoff": cutoff.isoformat(), "removed": removed.as_dict()}, indent=2))
    elif not quiet:
        verb = "would remove" if dry_run else "removed"
        click.echo(f"emotion-batch: {verb} {removed} (processed before {cutoff.isoformat()})")


@cli.command("delete")
@click.option("--campaign", metavar="NAME", help="Erase this campaign, its ads, images and faces.")
@click.option("--ad", metavar="NAME", help="Erase this ad only (with --campaign when the name is in several).")
@db_option
@removal_options
def delete_command(campaign, ad, db, dry_run, yes, quiet, verbose, as_json) -> None:
    """Erase every database row of a campaign (or of one ad) in one transaction. Image files are never touched:
    move them out of ROOT too, or the next run stores them again."""
    setup_logging(verbose, quiet)
    if campaign is None and ad is None:
        raise click.UsageError("Give --campaign NAME, --ad NAME, or both.")
    from .config import Settings
    from .jobs import delete_job

    settings = Settings.from_options(db=db)
    target = " / ".join(x for x in (campaign, ad) if x is not None)
    removed = dry_run_first(lambda dry: delete_job(settings, campaign=campaign, ad=ad, dry_run=dry),
                            lambda counted: f"{counted} ({target})", dry_run=dry_run, yes=yes)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "campaign": campaign, "ad": ad, "removed": removed.as_dict()}, indent=2))
    elif not quiet:
        verb = "would remove" if dry_run else "removed"
        click.echo(f"emotion-batch: {verb} {removed} of {target}; image files are untouched")


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=str))
@click.option("--seed", type=int, default=7, show_default=True)
def sample(dest, seed) -> None:
    """Write the sample campaign tree (public-domain photos shipped with scikit-image, and two short viewer
    videos made from them) into DEST."""
    from .sample import make_sample_campaigns

    counts = make_sample_campaigns(dest, seed=seed, videos=True)
    click.echo(f"emotion-batch: sample campaigns in {dest}: " + ", ".join(f"{k} ({v} files)" for k, v in counts.items()))


@cli.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="FER2013 folder (fer2013.csv.gz) or a train|valid|test/<emotion>/ tree.")
@click.option("--model", "arch", default="resx_small", show_default=True, help="Architecture spec name or JSON file.")
@click.option("--labels", type=click.Choice(["original", "ferplus-majority", "ferplus-soft"]), default="original", show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd", "rmsprop"]), default="adam", show_default=True)
@click.option("--lr", "learning_rate", type=float, default=2e-3, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "plateau", "constant"]), default="cosine", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--balance", default="none", show_default=True, help="none, weights or augment-<N> (N faces per class).")
@click.option("--no-augment", is_flag=True)
@click.option("--geometric-share", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of the training faces given the random rotation, shift and zoom (each resamples, so blurs, "
                   "the face); the rest keep their sharp pixels, as test crops do.")
@click.option("--label-smoothing", type=click.FloatRange(0, 0.5), default=0.0, show_default=True)
@click.option("--precision", type=click.Choice(["float32", "mixed_bfloat16"]), default="float32", show_default=True,
              help="mixed_bfloat16: bfloat16 arithmetic, float32 weights (CPUs with AVX-512 BF16, GPUs).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Momentum of a moving average of the weights (e.g. 0.999); the average is what is validated and kept.")
@click.option("--ferplus-weight", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Mix this share of the FER+ votes into the original labels' targets (FER2013 data only).")
@click.option("--teacher", "teachers", multiple=True,
              help="Distil from this model (repeat for an ensemble): a run folder, a .keras file or a bundled model's name; "
                   "its mean probabilities (with mirror images) are mixed into the targets.")
@click.option("--teacher-weight", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the teachers' probabilities in the targets (with --teacher).")
@click.option("--teacher-temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Soften the teachers' probabilities (p ** (1/T), renormalised).")
@click.option("--name", "run_name", help="Run folder name (default: <model>_<optimizer>_<colormode>_<batch>_<balance>).")
@click.option("--init", help="Start from these weights: a bundled model's name or a .keras file of the same architecture.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N rows of each split (smoke runs).")
@click.option("--seed", type=int, default=1337, show_default=True)
@click.option("--runs", "runs_dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@verbose_option
def train(data, arch, labels, optimizer, learning_rate, schedule, batch_size, epochs, patience, balance, no_augment,
          geometric_share, label_smoothing, precision, ema, ferplus_weight, teachers, teacher_weight, teacher_temperature, run_name, init,
          limit, seed, runs_dir, verbose) -> None:
    """Train (or resume) a run named <model>_<optimizer>_<colormode>_<batch>_<balance> under --runs."""
    setup_logging(max(verbose, 1), False)
    _quiet_tensorflow(verbose)
    from .training.fit import TrainConfig, train as train_run

    config = TrainConfig(data=data, model=arch, labels=labels, optimizer=optimizer, learning_rate=learning_rate,
                         schedule=schedule, batch_size=batch_size, epochs=epochs, patience=patience, balance=balance,
                         augment=not no_augment, geometric_share=geometric_share, label_smoothing=label_smoothing,
                         precision=precision, ema=ema,
                         ferplus_weight=ferplus_weight, teachers=list(teachers), teacher_weight=teacher_weight,
                         teacher_temperature=teacher_temperature, name=run_name, init=init, limit=limit, seed=seed)
    state = train_run(config, runs_dir=runs_dir, verbose=2 if verbose else 0)
    click.echo(f"emotion-batch: run {state['run_dir']}: best validation accuracy {state['best_val_accuracy']:.4f} "
               f"at epoch {state['best_epoch']} of {state['epoch']}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="FER2013 folder.")
@click.option("--name", required=True, help="Model name in the manifest.")
@click.option("--models-dir", default="models", show_default=True, type=click.Path(file_okay=False))
@click.option("--command", "command", default="", help="The exact training command, for the model card.")
@click.option("--default/--no-default", "make_default", default=True, show_default=True)
@click.option("--flip-tta", is_flag=True, help="Build test-time flip averaging into the bundled model (twice the arithmetic).")
@click.option("--calibrate", is_flag=True, help="Fit a temperature on PublicTest and build it into the bundled model.")
@click.option("--labels", type=click.Choice(["original", "ferplus-majority"]), default="original", show_default=True,
              help="The labels the model answers in and is measured against: with ferplus-majority, --calibrate "
                   "also fits a bias per class on PublicTest's FER+ majority labels (the file then follows the annotators' majority).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="The weights to bundle: the run's best validation epoch, or its last epoch (the weights' "
                   "moving average where the run kept one), for a choice made on another figure.")
@click.option("--logit-adjust", "logit_adjust", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              metavar="TAU",
              help="With --calibrate: add -TAU x log(class share on PublicTest) to the bias, moving answers from the "
                   "common expressions towards the rare ones (0: none; 1: aims at equal recall).")
@click.option("--flip-gate", "flip_gate", type=click.FloatRange(0.0, 1.0, min_open=True), default=None, metavar="P",
              help="With --flip-tta: bundle one pass and mirror only the faces whose top probability is below P "
                   "(recorded in the manifest; the job's classifiers apply it): most of flip averaging's accuracy "
                   "for a fraction of its arithmetic.")
def bundle(run_dir, data, name, models_dir, command, make_default, flip_tta, calibrate, labels, checkpoint,
           logit_adjust, flip_gate) -> None:
    """Evaluate a finished run and put its best model, card and hash into the models folder."""
    setup_logging(1, False)
    _quiet_tensorflow()
    from .training.evaluate import bundle_run

    metrics = bundle_run(run_dir, data=data, models_dir=models_dir, name=name, command=command,
                         make_default=make_default, flip_tta=flip_tta, calibrate=calibrate, labels=labels,
                         checkpoint=checkpoint, logit_adjust=logit_adjust, flip_gate=flip_gate)
    click.echo(f"emotion-batch: bundled {name}: PrivateTest accuracy {metrics['accuracy']:.4f} ({labels} labels), "
               f"macro-F1 {metrics['macro_f1']:.4f}, ECE {metrics['calibration']['ece']:.4f}")


@cli.command("model-stats")
@click.argument("name", required=False)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="FER2013 folder.")
@click.option("--backend", "backends", type=click.Choice(["keras", "litert"]), multiple=True,
              default=["keras", "litert"], show_default=True,
              help="The model files to measure (each where the model has one).")
def model_stats(name, data, backends) -> None:
    """Measure what a bundled model does to each true class on FER2013 PublicTest (confusion matrix, mean
    probabilities) and write models/NAME.shares.json: the statistics behind the reports' corrected shares.

    NAME defaults to the manifest's default model. Run it again after retraining or recalibrating a model.
    """
    setup_logging(1, False)
    _quiet_tensorflow()
    from .training.share_stats import model_statistics

    click.echo(f"emotion-batch: wrote {model_statistics(name, data, backends=backends)}")


@cli.command()
@click.option("--runs", "runs_dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Best and worst N runs.")
@json_option
def models(runs_dir, top, as_json) -> None:
    """Rank training runs by best validation accuracy: the top and bottom N."""
    from .training.runs import list_runs, ranking

    rows = list_runs(runs_dir)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise click.ClickException(f"No training runs (state.json) under {runs_dir}")
    click.echo("\n".join(ranking(rows, top=top)))


@cli.command("export-model")
@model_options
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "tflite", "tflite-quant"]), multiple=True,
              default=["savedmodel", "tflite", "tflite-quant"], show_default=True)
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True,
              help="SavedModel version folder (TF Serving).")
def export_model_command(model, model_sha256, out_dir, fmt, version) -> None:
    """Export a model for TensorFlow Serving (SavedModel) and TFLite (float and quantized)."""
    _quiet_tensorflow()
    from .classifier import locate_model
    from .training.export import export_files

    ref = locate_model(model, sha256=model_sha256, backend="keras")
    if ref.flip_gate is not None:
        click.echo(f"emotion-batch: the model mirrors faces below {ref.flip_gate.below:g} (its flip gate); the exports "
                   "average every face with its mirror image instead")
    for written, path in export_files(ref, out_dir, formats=fmt, version=version):
        click.echo(f"emotion-batch: {written}: {path}")


@cli.command()
@model_options
@backend_option
@click.option("--data", required=True, type=click.Path(exists=True),
              help="FER2013 folder or CSV, or a <split>/<emotion>/ folder tree.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--labels", type=click.Choice(["auto", "original", "ferplus-majority"]), default="auto", show_default=True,
              help="FER2013 data only: the labels to score against; auto: those the model answers in (its manifest "
                   "entry's, the original ones for a model outside the manifest).")
@click.option("--flip-tta", is_flag=True, help="Average with mirrored faces.")
@click.option("--out", "out_dir", default="evaluation", show_default=True, type=click.Path(file_okay=False),
              help="Folder for evaluation.json/.html/.pdf.")
def evaluate(model, model_sha256, backend, data, split, labels, flip_tta, out_dir) -> None:
    """Accuracy, per-class precision/recall/F1, confusion matrix and ROC/AUC of a model, with a report."""
    _quiet_tensorflow(model=model, backend=backend)
    from .training.evaluate import evaluate_to_folder

    done = evaluate_to_folder(model, data=data, out_dir=out_dir, sha256=model_sha256, backend=backend, split=split,
                              labels=labels, flip_tta=flip_tta)
    report = done.report
    recalls = ", ".join(f"{k} {v['recall']:.2f}" for k, v in report["per_class"].items())
    click.echo(f"emotion-batch: {done.model_id} on {report['n']} faces ({done.labels} labels): accuracy {report['accuracy']:.4f}, "
               f"macro-F1 {report['macro_f1']:.4f}, macro AUC {report['macro_auc']:.4f}; recall: {recalls}")
    click.echo(f"emotion-batch: report in {done.paths[2]}")


@cli.command("serve")
@model_options
@backend_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@db_option(help="Store results of requests that name a campaign and an ad in this database (the batch job's)  "
                "[default: store nothing]")
@detector_options
@click.option("--detectors", "detector_count", type=click.IntRange(min=1),
              help="Detector instances working in parallel  [default: one per core]")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.01), default=20.0, show_default=True,
              help="Largest image file accepted (413 above).")
@click.option("--max-request-mb", type=click.FloatRange(min=0.01), default=64.0, show_default=True,
              help="Largest request body (all files of a batch together; 413 above).")
@click.option("--max-files", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most images in one /v1/predict/batch request.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=50_000_000, show_default=True,
              help="Refuse images with more pixels (decompression bombs).")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="How long a request waits for others to share its model call.")
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True, help="Most faces per model call.")
@click.option("--no-batching", is_flag=True, help="One model call per request (no micro-batching).")
@verbose_option
def serve_command(model, model_sha256, backend, host, port, db, detector, min_score, min_face, detector_count, max_upload_mb,
                  max_request_mb, max_files, max_pixels, batch_wait_ms, max_batch, no_batching, verbose) -> None:
    """Serve the upload page and the JSON API (needs the 'api' extra: pip install 'emotion-batch[api]')."""
    setup_logging(max(verbose, 1), False)
    try:
        from .serve import ServeSettings, serve_model
    except ImportError as exc:
        raise click.ClickException(f"emotion-batch serve needs the api extra ({exc}); "
                                   "pip install 'emotion-batch[api]'") from exc
    _quiet_tensorflow(verbose, model=model, backend=backend if detector != "mtcnn" else None)
    settings = ServeSettings(max_image_bytes=int(max_upload_mb * 2**20), max_request_bytes=int(max_request_mb * 2**20),
                             max_files=max_files, max_pixels=max_pixels, batching=not no_batching,
                             batch_wait_ms=batch_wait_ms, max_batch=max_batch, db=db or None)
    serve_model(settings, model=model, sha256=model_sha256, backend=backend, detector=detector, min_score=min_score,
                min_face=min_face, detectors=detector_count, host=host, port=port,
                log_level="debug" if verbose > 1 else "info",
                announce=lambda line: click.echo(f"emotion-batch: {line}", err=True))
