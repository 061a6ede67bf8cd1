"""The seven apparent-expression classes, the rules every layer counts them by (valence, failed images), and
the label maps of the data sets we read.

The SQL of ``sql/`` and of the migrations spells valence and the failed statuses out; ``tests/test_labels_sql.py``
checks that it says what this module does."""

from __future__ import annotations

#: Class order of every model output, every table column and every report.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(EMOTIONS)

#: Emotions counted as positive and as negative in valence (the share of positive minus the share of negative
#: faces); neutral and surprise count as neither (surprise is as often a startled as a pleased face).
VALENCE_POSITIVE: tuple[str, ...] = ("happy",)
VALENCE_NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
#: The weight of each class (``EMOTIONS`` order) in valence: +1 positive, -1 negative, 0 neither.
VALENCE_WEIGHTS: tuple[float, ...] = tuple(
    1.0 if e in VALENCE_POSITIVE else -1.0 if e in VALENCE_NEGATIVE else 0.0 for e in EMOTIONS
)
#: Image statuses counted as failed (the image could not be read or decoded); ``ok`` and ``no_face`` are not.
FAILED_STATUSES: tuple[str, ...] = ("unreadable", "unsupported")

#: FER2013 label id (0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral) -> our index.
FER2013_TO_INDEX: tuple[int, ...] = tuple(
    EMOTIONS.index(name)
    for name in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
)

#: FER+ vote columns -> our class names (contempt, unknown and NF are dropped).
FERPLUS_COLUMNS: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}

#: Folder-name spellings accepted in class-per-folder trees (MMAFEDB and friends).
FOLDER_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
}


def emotion_index(name: str) -> int:
    """Return the class index of an emotion name or one of its folder aliases.

    Raises:
        KeyError: the name is not one of the seven classes or their aliases.
    """
    key = name.strip().lower()
    if key not in FOLDER_ALIASES:
        raise KeyError(
            f"Unknown emotion name; expected one of {sorted(FOLDER_ALIASES)}. Received: name={name!r}"
        )
    return EMOTIONS.index(FOLDER_ALIASES[key])
