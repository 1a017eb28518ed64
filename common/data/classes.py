"""The seven FER2013 expression classes, in the order used everywhere in emofl."""

CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(CLASSES)

# Folder names used by other FER data sets (RAF-DB, AffectNet re-organisations) for our classes.
CLASS_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}

# Classes some data sets carry that FER2013 does not: skipped with a warning.
IGNORED_CLASSES: frozenset[str] = frozenset({"contempt"})
