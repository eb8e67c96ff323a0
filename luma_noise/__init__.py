"""Sources, alignment, noise and sampling for the LUMA multimodal uncertainty benchmark."""

from .classes import CLASSES, ID_CLASSES, MODALITIES, OOD_CLASSES
from .examples import features_for, finish_batch, plan_examples
from .loader import load

__version__ = "0.2.0"
__all__ = ["CLASSES", "ID_CLASSES", "OOD_CLASSES", "MODALITIES", "features_for", "plan_examples", "finish_batch", "load"]
