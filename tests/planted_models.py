"""Checkpoints whose features are a known function of their input, for wiring tests.

`save_planted_models(folder)` writes, like tests/tiny_models.py, folders that
`from_pretrained(path)` loads as it would a Hub checkpoint, in the real architectures
(ResNet, BERT, Wav2Vec 2.0) with hand-set weights:

- image: a ResNet whose pooled output is the mean colour of the (processed) image in
  pixel units plus 300 per channel: the stem's centre tap undoes the image processor's
  normalisation, every residual branch is zero and every shortcut passes its channels
  through. A uniform image of colour (R, G, B) gives features (R, G, B) + const exactly.
- text: a BERT without layers whose word embeddings place the planted words of
  tests/make_mirror.py ("planted content") at known coordinates; the output is the mean
  of the token embeddings (LayerNorm is exact: every embedding has the same norm), so a
  planted text's features are its pair and member coordinates, plus 60 units per class
  id when the class word is not masked.
- audio: the tiny random Wav2Vec 2.0 model of tests/tiny_models.py (nothing planted).
"""

from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast, ResNetConfig, ResNetModel

from luma_noise.classes import CLASSES
from make_mirror import PLANTED_GRID, PLANTED_MEMBER, PLANTED_MEMBER_WORDS, PLANTED_PAIR_WORDS
from tiny_models import ConvNextImageProcessor, save_tiny_models

_TOKENS = 7  # "[CLS] the <class> <pair> <member> . [SEP]"
_TEXT_DIM = 16
_NORM = 3e5  # every embedding's half squared norm: LayerNorm then divides all by the same std
_CLASS_UNITS = 60  # feature distance between the class words of neighbouring class ids


def _save_image(folder: Path) -> None:
    processor = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    mean, std = processor.image_mean, processor.image_std
    config = ResNetConfig(embedding_size=8, hidden_sizes=[16, 24], depths=[1, 1], layer_type="basic")
    model = ResNetModel(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                for tensor in (*module.parameters(), *module.buffers()):
                    if tensor.is_floating_point():
                        tensor.zero_()
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.fill_(1.0 - module.eps)  # (x - 0) / sqrt(var + eps) == x
        stem = model.embedder.embedder
        for channel in range(3):  # centre tap: the pixel's value back in 0..255 units, + 300 for the ReLU
            stem.convolution.weight[channel, channel, 3, 3] = 255.0 * std[channel]
            stem.normalization.weight[channel] = 1.0
            stem.normalization.bias[channel] = 300.0 + 255.0 * mean[channel]
        for stage in model.encoder.stages:
            for layer in stage.layers:
                conv, norm = layer.shortcut.convolution, layer.shortcut.normalization
                for channel in range(conv.in_channels):
                    conv.weight[channel, channel, 0, 0] = 1.0
                norm.weight.fill_(1.0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _embedding(coordinates: dict) -> np.ndarray:
    """A word vector: dims (2i, 2i+1) = (+v, -v) for coordinate i = v, then a filler pair
    that gives every vector the same squared norm 2 * _NORM**2 (and mean 0)."""
    vector = np.zeros(_TEXT_DIM)
    for i, value in coordinates.items():
        vector[2 * i], vector[2 * i + 1] = value, -value
    filler = np.sqrt(_NORM**2 - sum(v * v for v in coordinates.values()))
    vector[8], vector[9] = filler, -filler
    return vector


def _save_text(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "."]
    vectors = {word: _embedding({}) for word in specials}
    for pair, word in enumerate(PLANTED_PAIR_WORDS):
        vectors[word] = _embedding({0: _TOKENS * PLANTED_GRID * (pair % 5), 1: _TOKENS * PLANTED_GRID * (pair // 5)})
    for member, word in enumerate(PLANTED_MEMBER_WORDS):
        vectors[word] = _embedding({2: _TOKENS * PLANTED_MEMBER * (2 * member - 1)})
    for class_id, word in enumerate(CLASSES):
        vectors[word] = _embedding({3: _TOKENS * _CLASS_UNITS * class_id})
    vocab = list(vectors)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True, model_max_length=16).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=_TEXT_DIM, num_hidden_layers=0, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    model = BertModel(config, add_pooling_layer=False).eval()
    embeddings = model.embeddings
    with torch.no_grad():
        embeddings.word_embeddings.weight.copy_(torch.tensor(np.stack([vectors[w] for w in vocab])))
        embeddings.position_embeddings.weight.zero_()
        embeddings.token_type_embeddings.weight.zero_()
        embeddings.LayerNorm.weight.fill_(_NORM * np.sqrt(2 / _TEXT_DIM))  # undo the division by the std
        embeddings.LayerNorm.bias.zero_()
    model.save_pretrained(folder)


def save_planted_models(folder) -> dict[str, str]:
    """Write planted image and text checkpoints (and the tiny audio one) under `folder`;
    returns {modality: path}."""
    folder = Path(folder)
    paths = save_tiny_models(folder / "tiny")
    for modality, save in (("image", _save_image), ("text", _save_text)):
        paths[modality] = str(folder / f"planted-{modality}")
        save(Path(paths[modality]))
    return paths
