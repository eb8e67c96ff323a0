"""Deep features for LUMA's feature-space sampling, through `transformers`, with a disk cache.

One extractor per modality, each loaded with `from_pretrained(model_id, revision=...)`
so a Hub id, a mirror or a local folder all work the same way:

- audio: a Wav2Vec 2.0 model (default `facebook/wav2vec2-large-960h-lv60-self`, the
  paper's family); input resampled to the feature extractor's `sampling_rate` with
  `scipy.signal.resample_poly`; feature = mean of the last hidden state over the
  frames that cover real samples (padding frames excluded). D = 1,024 for "large".
- text: BERT (default `bert-base-uncased`); every whole word whose Porter stem equals
  the class word's is replaced by the tokenizer's mask token first (see
  `mask_label_words`), so features describe the context rather than the label;
  feature = mean of the last hidden state over non-padding tokens. D = 768.
- image: the paper fine-tuned VGG-11, which `transformers` does not provide. We use
  `microsoft/resnet-18` (AutoModel + AutoImageProcessor): like VGG-11 an ImageNet-
  trained CNN of similar depth and cost, and among the smallest image backbones in
  `transformers` (11 M parameters, runs on CPU). Feature = pooled output (global
  average pool of the last stage), flattened, D = 512. The features are not fine-tuned
  on LUMA, so which images count as "near the class centre" differs from the paper.
  Images go through the image processor's PIL backend even when torchvision is
  installed, so the features (and the cache) do not depend on that optional package.

`cached_features` stores results under `default_cache_dir()`, keyed by modality,
model id, revision and a caller-chosen key for the items.

torch and transformers are imported inside the functions that need them: the dataset
script imports `luma_noise` for every config, and most configs never extract features.
"""

import collections
import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

DEFAULT_MODEL_IDS = {
    "image": "microsoft/resnet-18",
    "audio": "facebook/wav2vec2-large-960h-lv60-self",
    "text": "bert-base-uncased",
}
# Bump when the way features are computed changes: old cache files are then ignored.
_CACHE_VERSION = 1
# How often `cached_features` computed features ("computed") or read them ("loaded");
# tests read it to see whether a computation happened.
CACHE_EVENTS: collections.Counter = collections.Counter()

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "horse's" -> "horse", "s"


@functools.cache
def _stemmer():
    from nltk.stem import PorterStemmer

    return PorterStemmer()


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stem(word.lower())


def mask_label_words(text: str, label: str, mask_token: str) -> str:
    """`text` with every whole word whose Porter stem equals `label`'s replaced by `mask_token`.

    Case-insensitive; words are maximal runs of letters, so "woman" is kept for "man",
    while "Horse", "horses" and "horse's" are masked for "horse". Only what the stemmer
    relates is masked: irregular forms are kept ("mice" for "mouse", "men" for "man"),
    and so is "buses" for "bus" (Porter stems them "buse" and "bu"); derived words with
    the same stem are masked ("training" for "train").
    """
    target = _stem(label)
    return _WORD.sub(lambda m: mask_token if _stem(m.group()) == target else m.group(), text)


def default_cache_dir() -> Path:
    """`<datasets cache>/luma_features`, the datasets cache being $HF_DATASETS_CACHE,
    else $HF_HOME/datasets, else ~/.cache/huggingface/datasets (as `datasets` resolves it)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        base = Path(os.environ["HF_DATASETS_CACHE"])
    elif os.environ.get("HF_HOME"):
        base = Path(os.environ["HF_HOME"]) / "datasets"
    else:
        base = Path.home() / ".cache" / "huggingface" / "datasets"
    return base.expanduser() / "luma_features"


def _check_modality(modality: str) -> None:
    if modality not in DEFAULT_MODEL_IDS:
        raise ValueError(f"modality must be one of {sorted(DEFAULT_MODEL_IDS)}, got {modality!r}")


def _resolve_device(device):
    import torch

    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


def _load(modality: str, model_id: str, revision):
    """(preprocessor, model in eval mode) for `modality`."""
    import transformers

    kwargs = {} if revision is None else {"revision": revision}
    if modality == "image":
        pil = {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {"use_fast": False}
        processor = transformers.AutoImageProcessor.from_pretrained(model_id, **kwargs, **pil)
    elif modality == "audio":
        processor = transformers.AutoFeatureExtractor.from_pretrained(model_id, **kwargs)
    else:
        processor = transformers.AutoTokenizer.from_pretrained(model_id, **kwargs)
    return processor, transformers.AutoModel.from_pretrained(model_id, **kwargs).eval()


def _pooled(outputs):
    """(B, D) from a vision backbone's output: pooled output flattened, else a spatial mean."""
    pooled = getattr(outputs, "pooler_output", None)
    if pooled is None:
        hidden = outputs.last_hidden_state
        pooled = hidden.mean(dim=(2, 3)) if hidden.ndim == 4 else hidden.mean(dim=1)
    return pooled.flatten(1)


def _embed_images(images, processor, model, device):
    """images: list of (H, W, 3) uint8 arrays -> (B, D) tensor."""
    inputs = processor(images=list(images), return_tensors="pt", input_data_format="channels_last")
    return _pooled(model(pixel_values=inputs["pixel_values"].to(device)))


def _embed_audio(clips, processor, model, device):
    """clips: list of (float samples, sample_rate) -> (B, D) tensor, mean over real frames."""
    import torch
    from scipy.signal import resample_poly

    target = int(processor.sampling_rate)
    waves = []
    for samples, rate in clips:
        wave = np.asarray(samples, dtype=np.float32)
        wave = wave.mean(axis=1) if wave.ndim == 2 else wave  # (frames, channels) -> mono
        if int(rate) != target:
            g = np.gcd(int(rate), target)
            wave = resample_poly(wave, target // g, int(rate) // g).astype(np.float32)
        waves.append(wave)
    frames = model._get_feat_extract_output_lengths(torch.tensor([len(w) for w in waves], device=device))
    if (frames < 1).any():
        short = min(len(w) for w in waves)
        raise ValueError(f"an audio clip has {short} samples at {target} Hz after resampling, "
                         "too short for one model frame")
    inputs = processor(waves, sampling_rate=target, padding=True, return_tensors="pt")
    hidden = model(**{k: v.to(device) for k, v in inputs.items()}).last_hidden_state
    valid = (torch.arange(hidden.shape[1], device=device)[None, :] < frames[:, None]).to(hidden.dtype)
    return (hidden * valid[..., None]).sum(dim=1) / valid.sum(dim=1, keepdim=True).clamp(min=1)


def _embed_texts(pairs, tokenizer, model, device):
    """pairs: list of (text, label word) -> (B, D) tensor, mean over non-padding tokens."""
    texts = [mask_label_words(text, label, tokenizer.mask_token) for text, label in pairs]
    inputs = tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(device)
    hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].to(hidden.dtype)[..., None]
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


_EMBED = {"image": _embed_images, "audio": _embed_audio, "text": _embed_texts}


def extract_features(modality: str, items, model_id: str, revision: str | None = None, batch_size: int = 32,
                     device=None, progress: bool = True) -> np.ndarray:
    """Deep features of `items`, one row per item: (N, D) float32.

    modality: "image" (items: (H, W, 3) uint8 arrays, e.g. 32x32 CIFAR/EDM images),
    "audio" (items: (float32 samples in [-1, 1], sample rate in Hz) pairs; stereo as
    (frames, channels) is averaged to mono) or "text" (items: (text, class word) pairs;
    the class word is masked, see `mask_label_words`). model_id: Hub id or local folder
    (defaults in DEFAULT_MODEL_IDS); revision: Hub branch, tag or commit (pin a commit
    for reproducible features). Runs in batches of `batch_size` under `torch.no_grad()`
    on `device` (default: CUDA when available, else CPU), with a tqdm bar if `progress`.
    """
    import torch

    _check_modality(modality)
    items = list(items)
    if not items:
        raise ValueError(f"no {modality} items to extract features from")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = _resolve_device(device)
    processor, model = _load(modality, model_id, revision)
    model.to(device)
    rows = []
    with torch.no_grad(), tqdm(total=len(items), desc=f"{modality} features", unit="item", disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            rows.append(_EMBED[modality](batch, processor, model, device).float().cpu().numpy())
            bar.update(len(batch))
    return np.concatenate(rows).astype(np.float32, copy=False)


def cache_path(modality: str, items_key: str, model_id: str, revision: str | None, cache_dir) -> Path:
    """The cache file for these features: `<cache_dir>/<modality>-<hash>.npy`.

    The hash covers the cache format version, modality, model id, revision and
    `items_key`, so changing any of them selects a different file.
    """
    key = json.dumps([_CACHE_VERSION, modality, model_id, revision, items_key])
    return Path(cache_dir) / f"{modality}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.npy"


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic within one file system, hence the temp file in the same folder
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cached_features(modality: str, items_key: str, items_fn, model_id: str, revision: str | None = None,
                    cache_dir=None, **extract_kwargs) -> np.ndarray:
    """`extract_features(modality, items_fn(), model_id, revision, **extract_kwargs)`, computed once.

    items_key: a string that identifies the items and their order (e.g. the source
    revision and split file): the same key must always mean the same items.
    items_fn: called with no arguments, only when the features are not cached.
    cache_dir: default `default_cache_dir()`. A local folder as model_id is keyed by its
    path, not its contents: change `revision` or `items_key` after replacing the weights.
    Concurrent builds may both compute; each writes atomically, so the file stays whole.
    Returns (N, D) float32. Counts "computed"/"loaded" in CACHE_EVENTS.
    """
    _check_modality(modality)
    path = cache_path(modality, items_key, model_id, revision, cache_dir or default_cache_dir())
    try:
        features = np.load(path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError) as err:  # e.g. a file cut short by a full disk
        warnings.warn(f"unreadable feature cache {path} ({err}); computing the features again", stacklevel=2)
    else:
        CACHE_EVENTS["loaded"] += 1
        return features
    features = extract_features(modality, items_fn(), model_id, revision, **extract_kwargs)
    _save_atomically(path, features)
    CACHE_EVENTS["computed"] += 1
    return features
