"""Runners of the batch job over the same stages: ``local`` (worker processes, ``pipeline.run_batch``)
and ``ray`` (Ray Data actors on one machine or a cluster, ``engines.ray_engine``).

Every engine keeps discovery, the incremental skip, the run lock, the runs row and the database writes
in the driver process, so both give the same rows for the same inputs. Ray is imported only when the
Ray engine runs (``pip install 'emotion-batch[ray]'``).
"""

from __future__ import annotations

from ..pipeline import ENGINES

__all__ = ["ENGINES", "RayExecutor", "actor_gpu", "run_batch_ray"]


def __getattr__(name: str):
    if name in ("RayExecutor", "actor_gpu", "run_batch_ray"):
        from . import ray_engine

        return getattr(ray_engine, name)
    raise AttributeError(f"module 'emotion_batch.engines' has no attribute {name!r}")
