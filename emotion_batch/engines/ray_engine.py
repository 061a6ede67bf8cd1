"""The batch job on Ray Data: the same stages as the local engine, run by actors on one machine or a cluster.

The driver (this process) does what the local engine's main process does: discovery and the incremental
skip (size + mtime, then sha256), the run lock, the ``runs`` row and every database write, all through
``pipeline.run_batch``. Only the middle of the journey moves: a Ray Dataset of the new files' tasks goes
through ``map_batches`` with a stateful actor class that builds its detector (``pipeline.Analyser``) and
loads the classifier once, from the run's ``classifier.ModelFile`` (the file's path, backend and sha256,
resolved once by the driver; each actor checks the hash on its node), then reads, decodes, detects, crops
and classifies a batch of images in one ``predict`` call. Outcomes stream back to the driver classified
(``RayExecutor.classifies``), which writes them in chunks with the same repository functions, so both
engines give the same rows and statuses for the same inputs.

Every node must see ROOT and the model file at the same paths (a shared file system, or the same
container image for the bundled model) and run the same emotion-batch version.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable, Iterator

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from ..classifier import ModelFile, open_classifier
from ..exceptions import ConfigError, EngineError
from ..pipeline import Analyser, Outcome, RunOptions, RunSummary, Task, classify_outcomes, run_batch
from ..video.batch import VideoAnalyser, VideoTask

log = logging.getLogger(__name__)

#: Environment of the Ray workers this engine starts: TensorFlow's C++ start-up lines muted.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EngineError("engine='ray' needs Ray Data: pip install 'emotion-batch[ray]'. "
                          f"Received: import error {exc}") from exc
    return ray


def actor_gpu(options: RunOptions) -> bool | None:
    """Whether the actors classify with a GPU, for ``classifier.locate_model``'s ``gpu``: True for actors given
    a GPU share (``auto`` then takes the Keras file); None for CPU actors (judged by the driver's machine)."""
    return True if options.ray_gpus > 0 else None


def _load(options: RunOptions, model: ModelFile):
    """The actor's classifier: the driver's model file, its hash checked on this node, so that a node with
    another file fails loudly instead of writing other numbers under the same model id."""
    return open_classifier(model.verify(), batch_size=options.batch_size)


class _Predictor:
    """A Ray Data actor: one detector and one classifier, loaded once, over batches of pickled tasks."""

    def __init__(self, options: RunOptions, model: ModelFile) -> None:
        self.classifier = _load(options, model)
        self.analyser = Analyser(options, self.classifier.size, self.classifier.channels)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [self.analyser(pickle.loads(blob)) for blob in batch["task"]]
        classify_outcomes(self.classifier, outcomes)  # one predict call for every face of the batch
        blobs = np.empty(len(outcomes), dtype=object)
        blobs[:] = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in outcomes]
        return {"outcome": blobs}


class _VideoPredictor:
    """A Ray Data actor for viewer recordings: one video detector and one classifier, loaded once, one video
    per call (``video.batch.VideoAnalyser``)."""

    def __init__(self, options: RunOptions, model: ModelFile) -> None:
        self.analyser = VideoAnalyser(_load(options, model), detector=options.detector, fps=options.video_fps,
                                      work_side=options.work_side, min_score=options.min_score,
                                      min_face=options.min_face, level=options.level_eyes,
                                      reprocess=options.reprocess)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tasks = [pickle.loads(blob) for blob in batch["task"]]
        blobs = np.empty(len(tasks), dtype=object)
        blobs[:] = [pickle.dumps((task, self.analyser(task)), protocol=pickle.HIGHEST_PROTOCOL) for task in tasks]
        return {"result": blobs}


class RayExecutor:
    """Turns tasks into classified outcomes with a pool of ``_Predictor`` actors, and recordings into their
    rows with ``_VideoPredictor`` actors (``pipeline.Executor``, one that classifies).

    Args:
        options: the run's options; ``workers`` is the number of actors (default: one per CPU of the
            cluster, or per GPU share with ``ray_gpus``), ``chunk_images`` and ``batch_size`` bound the
            images per actor call; ``batch_size`` is also the actors' faces per model call.
        model: the run's model file (``classifier.locate_model``).
    """

    classifies = True  # the actors run the model: outcomes come back with their probabilities
    worker_deaths = 0  # Ray restarts its actors and retries their tasks itself

    def __init__(self, options: RunOptions, model: ModelFile) -> None:
        if options.workers == 0:
            raise ConfigError("workers must be 1 or more with engine='ray' (actors), or None for one per CPU. "
                              f"Received: workers={options.workers!r}")
        self.ray = _import_ray()
        self.options = options
        self.model = model
        self.device = "ray:GPU" if options.ray_gpus > 0 else "ray:CPU"
        self.actors_used = 0

    def _actors(self, images_per_call: int, tasks: int) -> int:
        if self.options.workers is not None:
            wanted = self.options.workers
        else:
            resources = self.ray.cluster_resources()
            if self.options.ray_gpus > 0:
                wanted = int(resources.get("GPU", 0) / self.options.ray_gpus)
            else:
                wanted = int(resources.get("CPU", 1))
        return max(1, min(wanted, math.ceil(tasks / images_per_call)))

    def map(self, tasks: Iterator[Task]) -> Iterator[Outcome]:
        """Classified outcomes of ``tasks``, in the order the actors finish them."""
        items = [{"task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in tasks]
        if not items:
            return
        ray = self.ray
        per_call = max(1, min(self.options.chunk_images, self.options.batch_size))
        actors = self._actors(per_call, len(items))
        self.actors_used = actors
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / per_call)))
        dataset = dataset.map_batches(
            _Predictor,
            fn_constructor_kwargs={"options": self.options, "model": self.model},
            batch_size=per_call,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            num_gpus=self.options.ray_gpus or None,
            udf_modifying_row_count=False,
        )
        log.info("ray engine: %d new files, %d actors, %d images per call", len(items), actors, per_call)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for blob in batch["outcome"]:
                    yield pickle.loads(blob)
        except ray.exceptions.RayError as exc:
            raise EngineError(f"The Ray engine failed: {str(exc).strip().splitlines()[-1][:500]}") from exc

    def map_videos(self, tasks: list[VideoTask]) -> Iterator[tuple]:
        """``(task, VideoRecord or None)`` for every recording, one video per actor call, in the order the actors
        finish them (the driver writes each in its own transaction)."""
        if not tasks:
            return
        ray = self.ray
        actors = self._actors(1, len(tasks))
        items = [{"task": pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)} for t in tasks]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        dataset = dataset.map_batches(
            _VideoPredictor,
            fn_constructor_kwargs={"options": self.options, "model": self.model},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            num_gpus=self.options.ray_gpus or None,
            udf_modifying_row_count=False,
        )
        log.info("ray engine: %d new videos, %d actors, one video per call", len(items), actors)
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for blob in batch["result"]:
                    yield pickle.loads(blob)
        except ray.exceptions.RayError as exc:
            raise EngineError(f"The Ray engine failed: {str(exc).strip().splitlines()[-1][:500]}") from exc

    def close(self, *, terminate: bool = False) -> None:
        """Nothing to end: the dataset's actors go when its iteration ends (or Ray shuts down)."""


def run_batch_ray(
    session_factory: sessionmaker[Session],
    model: ModelFile,
    options: RunOptions,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RunSummary:
    """``pipeline.run_batch`` with Ray Data actors doing the reading, detection and classification.

    Uses the Ray instance this process is already connected to; otherwise connects to
    ``options.ray_address`` (``"auto"``, ``"ray://head:10001"``) or, when that is None, starts a local
    Ray instance, and shuts down what it started at the end.

    Args:
        session_factory: sessions on the results database (written from this process only).
        model: the run's model file (``classifier.locate_model`` with ``gpu=actor_gpu(options)``).
        options: the run's options, with ``engine="ray"``.
        progress: called with the number of files handled since its last call.
        on_total: called once with the number of files found (``pipeline.run_batch``).

    Raises:
        EngineError: Ray is not installed, the cluster cannot be reached, or an actor failed.
    """
    options.validate()
    if options.engine != "ray":
        raise ConfigError(f"run_batch_ray needs engine='ray'. Received: engine={options.engine!r}")
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False} if options.ray_address is None else {}
        try:
            ray.init(address=options.ray_address, runtime_env={"env_vars": WORKER_ENV}, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"Cannot start or reach Ray ({exc}). Received: ray_address={options.ray_address!r}") from exc
        started_here = True
    try:
        return run_batch(session_factory, model, options, progress=progress, on_total=on_total,
                         executor=lambda: RayExecutor(options, model))
    finally:
        if started_here:
            ray.shutdown()
