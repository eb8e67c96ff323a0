"""Tiny, randomly initialised checkpoints for offline tests.

`save_tiny_models(folder)` writes one checkpoint per modality, each a folder that
`from_pretrained(path)` loads exactly as it would a Hub checkpoint: a BERT model and
tokenizer (text), a Wav2Vec 2.0 model and feature extractor (audio) and a ResNet
model with the image processor class `microsoft/resnet-18` uses (image). Weights are
seeded, so every build gives the same models.
"""

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    ResNetConfig,
    ResNetModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

try:  # transformers >= 5 without torchvision: name the PIL processor to avoid a fallback warning
    from transformers import ConvNextImageProcessorPil as ConvNextImageProcessor
except ImportError:
    from transformers import ConvNextImageProcessor

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "the", "is", "on", "and", "runs", "sits", "near", "big", "small",
    "horse", "horses", "man", "woman", "dog", "cat", "mouse", "mice", "bus", "field", ".", ",",
]
TEXT_DIM, AUDIO_DIM, IMAGE_DIM = 16, 16, 24
AUDIO_RATE = 16_000


def _save_text(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # The vocab path is positional: transformers 4 calls it `vocab_file`, 5 calls it `vocab`.
    BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True, model_max_length=64).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(VOCAB), hidden_size=TEXT_DIM, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(folder)


def _save_audio(folder: Path) -> None:
    # Layer-norm feature encoder with stable layer norm, like the large LV-60 checkpoints.
    config = Wav2Vec2Config(
        hidden_size=AUDIO_DIM, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True,
        mask_time_prob=0.0,
    )
    Wav2Vec2Model(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=AUDIO_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True,
    ).save_pretrained(folder)


def _save_image(folder: Path) -> None:
    config = ResNetConfig(embedding_size=8, hidden_sizes=[16, IMAGE_DIM], depths=[1, 1], layer_type="basic")
    ResNetModel(config).eval().save_pretrained(folder)
    # microsoft/resnet-18 ships a ConvNext image processor (resize, centre crop, ImageNet
    # normalisation); 32 px instead of 224 keeps the tests fast.
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875).save_pretrained(folder)


def save_tiny_models(folder) -> dict[str, str]:
    """Write tiny text/audio/image checkpoints under `folder`; returns {modality: path}."""
    folder = Path(folder)
    paths = {m: folder / f"tiny-{m}" for m in ("text", "audio", "image")}
    torch.manual_seed(0)
    _save_text(paths["text"])
    _save_audio(paths["audio"])
    _save_image(paths["image"])
    return {m: str(p) for m, p in paths.items()}
