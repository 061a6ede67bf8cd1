"""emotion_batch: apparent facial expressions in ad-campaign photos, in batches, stored in SQL, reported per ad."""

from __future__ import annotations

__version__ = "0.1.0"

from .exceptions import EmotionBatchError
from .labels import EMOTIONS

__all__ = ["EMOTIONS", "EmotionBatchError", "__version__"]
