"""LUMA: a benchmark dataset for learning from uncertain and multimodal data.

Each example aligns a 32x32 image (CIFAR-10/100 or EDM-generated), a spoken class word
and an LLM-written passage about the class, over 42 in-distribution and 8
out-of-distribution classes. Named configs (`clean`, `sample_noise`, `low_diversity`,
`label_noise_0.1` ... `label_noise_0.5`, `conflict`) inject uncertainty while examples are
yielded.

This script is thin on purpose: the config class (`LumaConfig`, every field documented),
the table of pinned upstream sources and the builder live in `luma_noise.builder`, so the
installed package drives the very same builder on `datasets` releases without loading
scripts (`luma_noise.load`). The noise, sampling and alignment code is in `luma_noise`.
"""

from luma_noise.builder import LumaConfig  # noqa: F401  (the config class users pass fields to)
from luma_noise.builder import Luma as _PackagedLuma


class Luma(_PackagedLuma):
    """LUMA: aligned image, audio and text examples with configurable uncertainty
    (`luma_noise.builder.Luma`; defined here so `load_dataset` finds the builder in this script)."""
