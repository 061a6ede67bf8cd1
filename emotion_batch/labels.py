"""The seven apparent-expression classes and the label maps of the data sets we read."""

from __future__ import annotations

#: Class order of every model output, every table column and every report.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(EMOTIONS)

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
