"""Native libraries (TensorFlow, LiteRT) that write to the process's stderr file descriptor directly."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block.

    TensorFlow's start-up lines (oneDNN, CUDA probing) and LiteRT's "Created TensorFlow Lite XNNPACK
    delegate" are written from C++, past Python's ``sys.stderr`` and ``logging``; a cron job run with
    ``-q`` must not print them. Python-level errors raised inside the block still propagate as exceptions.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
