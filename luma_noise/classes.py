"""LUMA's 50 classes: canonical order, in/out-of-distribution split, CIFAR renames."""

CLASSES = (
    "man", "boy", "house", "woman", "girl", "table", "road", "horse", "dog", "ship",
    "bird", "mountain", "bed", "train", "bridge", "fish", "cloud", "chair", "cat", "baby",
    "castle", "forest", "television", "bear", "camel", "sea", "fox", "plain", "bus", "snake",
    "lamp", "clock", "lion", "tank", "palm", "rabbit", "pine", "cattle", "oak", "mouse",
    "frog", "ray", "bicycle", "truck", "elephant", "roses", "wolf", "telephone", "bee", "whale",
)
NUM_ID_CLASSES = 42
ID_CLASSES = CLASSES[:NUM_ID_CLASSES]
OOD_CLASSES = CLASSES[NUM_ID_CLASSES:]
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}

# CIFAR label names that LUMA renames; every other CIFAR name is used as it is.
CIFAR_RENAMES = {
    "aquarium_fish": "fish",
    "pickup_truck": "truck",
    "oak_tree": "oak",
    "rose": "roses",
    "pine_tree": "pine",
    "palm_tree": "palm",
}

MODALITIES = ("image", "audio", "text")
