"""Deep features for LUMA's feature-space sampling, through `transformers`, with a disk cache.

One extractor per modality, each loaded with `from_pretrained(model_id, revision=...)`
so a Hub id, a mirror or a local folder all work the same way:

- audio: a Wav2Vec 2.0 model (default `facebook/wav2vec2-large-960h-lv60-self`, the
  paper's family); input resampled to the feature extractor's `sampling_rate` with
  `scipy.signal.resample_poly`; feature = mean of the last hidden state over the
  frames that cover real samples (padding frames excluded). D = 1,024 for "large".
- text: BERT (default `bert-base-uncased`); every whole word whose Porter stem equals
  the class word's, and the class word's irregular plurals, are replaced by the
  tokenizer's mask token first (see `mask_label_words`), so features describe the
  context rather than the label; feature = mean of the last hidden state over
  non-padding tokens. D = 768.
- image: the paper fine-tuned VGG-11, which `transformers` does not provide. We use
  `microsoft/resnet-18` (AutoModel + AutoImageProcessor): like VGG-11 an ImageNet-
  trained CNN of similar depth and cost, and among the smallest image backbones in
  `transformers` (11 M parameters, runs on CPU). Feature = pooled output (global
  average pool of the last stage), flattened, D = 512. The features are not fine-tuned
  on LUMA, so which images count as "near the class centre" differs from the paper.
  Images go through the image processor's PIL backend even when torchvision is
  installed, so the features (and the cache) do not depend on that optional package.

Items of similar size (audio seconds, text characters) share a batch, so padding stays
small; a row's features do not depend on its batch (means over real frames and tokens
only; Wav2Vec 2.0 models that cannot mask padding only batch clips of equal length).

`cached_features` caches one feature row per item, keyed by a digest of the item's
content (`content_key`), under `default_cache_dir()`: any seed, config or split reuses
every row already computed, and only missing rows are extracted.

torch and transformers are imported inside the functions that need them: the dataset
script imports `luma_noise` for every config, and most configs never extract features.

Longer than 300 lines because extraction and its cache share one contract (a row is keyed by the
content its extractor reads): the three modalities' input steps, the batching and the cache are
read together; each function fits a screen.
"""

import concurrent.futures
import contextlib
import functools
import gc
import hashlib
import json
import logging
import re
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..upstream import durations
from ..atomic import write_npz

logger = logging.getLogger(__name__)

DEFAULT_MODEL_IDS = {
    "image": "microsoft/resnet-18",
    "audio": "facebook/wav2vec2-large-960h-lv60-self",
    "text": "bert-base-uncased",
}
# Bump when the way features are computed changes: old cache folders are then ignored.
_CACHE_VERSION = 2
# Computed rows are written to the cache in files of this many rows, so a killed
# extraction (hours on real data) keeps what it finished.
_FILE_ROWS = 4096
# A temporary file untouched for this long belongs to a killed write: it is removed.
_STALE_TMP_S = 3600
# The estimate of the time left is shown once this many batches and seconds were timed
# (after one untimed warm-up batch, which also loads the model).
_TIMED_BATCHES = 2
_TIMED_S = 5.0

# Plurals of LUMA's class words that the Porter stemmer does not bring back to the class
# word's stem (checked over all 50 class words in tests/e2e/dataset/test_features.py); "-s"/"-es"/"-ies"
# plurals of the others stem like their singular.
IRREGULAR_PLURALS = {
    "man": ("men",),
    "woman": ("women",),
    "mouse": ("mice",),
    "wolf": ("wolves",),
    "bus": ("buses", "busses"),
}

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "horse's" -> "horse", "s"


@functools.cache
def _stemmer():
    from nltk.stem import PorterStemmer

    return PorterStemmer()


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stem(word.lower())


def mask_label_words(text: str, label: str, mask_token: str) -> str:
    """`text` with every whole word that names `label` replaced by `mask_token`.

    A word names the label when its Porter stem equals the label's or it is one of the
    label's IRREGULAR_PLURALS. Case-insensitive; words are maximal runs of letters, so
    "woman" and "women" are kept for "man", while "Horse", "horses" and "horse's" are
    masked for "horse", "men" for "man", "mice" for "mouse". Derived words with the same
    stem are masked too ("training" for "train").
    """
    target = _stem(label)
    irregular = set(IRREGULAR_PLURALS.get(label.lower(), ()))

    def mask(match):
        word = match.group()
        return mask_token if _stem(word) == target or word.lower() in irregular else word

    return _WORD.sub(mask, text)


def default_cache_dir(cache_root=None) -> Path:
    """`<cache_root>/luma_features`; `cache_root` defaults to the datasets cache as
    `datasets.config` resolves it ($HF_DATASETS_CACHE, else $HF_HOME/datasets, else
    $XDG_CACHE_HOME/huggingface/datasets, else ~/.cache/huggingface/datasets)."""
    if cache_root is None:
        import datasets

        cache_root = datasets.config.HF_DATASETS_CACHE
    return Path(cache_root).expanduser() / "luma_features"


def content_key(*parts) -> bytes:
    """16-byte BLAKE2b digest of `parts` (bytes, or str encoded as UTF-8), each length-prefixed
    so that ("ab", "c") and ("a", "bc") differ. Cache keys of single items:
    image `content_key(str(shape), pixels.tobytes())`, audio `content_key(wav file bytes)`,
    text `content_key(text, class word)` (the class word decides what is masked)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.digest()


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


def _image_inputs(images, processor, model, device):
    """images: list of (H, W, 3) uint8 arrays -> model keyword arguments on `device`."""
    inputs = processor(images=list(images), return_tensors="pt", input_data_format="channels_last")
    return {"pixel_values": inputs["pixel_values"].to(device)}


def _embed_images(inputs, model):
    return _pooled(model(**inputs))


def _mono_at(samples, rate: int, target: int) -> np.ndarray:
    """One clip as 1-D float32 at `target` Hz (stereo (frames, channels) averaged to mono)."""
    from scipy.signal import resample_poly

    wave = np.asarray(samples, dtype=np.float32)
    wave = wave.mean(axis=1) if wave.ndim == 2 else wave
    if int(rate) != target:
        g = np.gcd(int(rate), target)
        wave = resample_poly(wave, target // g, int(rate) // g).astype(np.float32)
    return wave


def _pads_exactly(processor, model) -> bool:
    """Whether zero padding leaves a Wav2Vec 2.0 model's outputs over real frames unchanged:
    only with an attention mask and a layer-norm feature encoder (a group-norm encoder, as in
    wav2vec2-base, normalises over time, padding included, and takes no attention mask)."""
    return bool(getattr(processor, "return_attention_mask", False)) and \
        getattr(model.config, "feat_extract_norm", "layer") == "layer"


def _audio_inputs(clips, processor, model, device):
    """clips: list of (float samples, sample_rate) -> list of (positions in the batch, model
    keyword arguments on `device`, frames (B,) covering real samples): one entry, or one per
    distinct length when padding would change the outputs (see `_pads_exactly`)."""
    import torch

    target = int(processor.sampling_rate)
    waves = [_mono_at(samples, rate, target) for samples, rate in clips]
    lengths = np.array([len(w) for w in waves])
    frames = model._get_feat_extract_output_lengths(torch.tensor(lengths))
    if (frames < 1).any():
        raise ValueError(f"an audio clip has {lengths.min()} samples at {target} Hz after resampling, "
                         "too short for one model frame")
    groups = [np.arange(len(waves))] if _pads_exactly(processor, model) else \
        [np.flatnonzero(lengths == n) for n in np.unique(lengths)]
    out = []
    for group in groups:
        inputs = processor([waves[i] for i in group], sampling_rate=target, padding=True, return_tensors="pt")
        out.append((group, {k: v.to(device) for k, v in inputs.items()}, frames[group].to(device)))
    return out


def _embed_audio(inputs, model):
    """Mean of the last hidden state over the frames that cover real samples, per group."""
    import torch

    rows, pieces = [], []
    for group, kwargs, frames in inputs:
        hidden = model(**kwargs).last_hidden_state
        valid = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < frames[:, None]).to(hidden.dtype)
        pieces.append((hidden * valid[..., None]).sum(dim=1) / valid.sum(dim=1, keepdim=True).clamp(min=1))
        rows.append(torch.as_tensor(group))
    order = torch.argsort(torch.cat(rows)).to(pieces[0].device)
    return torch.cat(pieces)[order]


def _text_inputs(pairs, tokenizer, model, device):
    """pairs: list of (text, label word) -> model keyword arguments on `device` (label masked)."""
    texts = [mask_label_words(text, label, tokenizer.mask_token) for text, label in pairs]
    return dict(tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(device))


def _embed_texts(inputs, model):
    """Mean of the last hidden state over non-padding tokens."""
    hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].to(hidden.dtype)[..., None]
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


# modality -> (preprocessing of a batch of items, forward pass + pooling)
_STEPS = {"image": (_image_inputs, _embed_images), "audio": (_audio_inputs, _embed_audio),
          "text": (_text_inputs, _embed_texts)}


def item_size(modality: str, item) -> float | None:
    """Size that decides batching: audio seconds, text characters, None for images (fixed size)."""
    if modality == "audio":
        samples, rate = item
        return len(samples) / float(rate)
    return len(item[0]) if modality == "text" else None


class Extractor:
    """One modality's feature model, loaded on first use and then kept (one load per build).

    model_id: Hub id or local folder (defaults in DEFAULT_MODEL_IDS); revision: Hub branch,
    tag or commit (pin a commit for reproducible features); batch_size: items per forward
    pass; device: default CUDA when available, else CPU. The model moves to the device
    once; each batch is preprocessed on the CPU and moved once. prefetch: prepare the next
    batch in a background thread while the model runs; default (None) on any device but
    the CPU, where the forward passes already keep every core busy and a third thread
    only competes with them (measured in benchmarks/bench_features.py).
    """

    def __init__(self, modality: str, model_id: str, revision: str | None = None, batch_size: int = 32, device=None,
                 prefetch: bool | None = None):
        _check_modality(modality)
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.modality, self.model_id, self.revision = modality, model_id, revision
        self.batch_size, self.device, self.prefetch = int(batch_size), device, prefetch
        self._loaded = None

    def load(self):
        """(preprocessor, model on the device, device), loading them the first time."""
        if self._loaded is None:
            device = _resolve_device(self.device)
            processor, model = _load(self.modality, self.model_id, self.revision)
            self._loaded = (processor, model.to(device), device)
        return self._loaded

    def unload(self) -> None:
        """Drop the model and preprocessor (they are loaded again if needed)."""
        if self._loaded is not None:
            device, self._loaded = self._loaded[2], None
            gc.collect()  # free the weights now, not at the next collection
            if device.type == "cuda":
                import torch

                torch.cuda.empty_cache()

    def plan(self, positions, sizes=None) -> list:
        """`positions` cut into batches: sorted by size when sizes are given, so that similar
        sizes share a batch; batches in a fixed shuffled order, so the first ones are typical
        of the whole (the time estimate and the progress bar's rate rely on it)."""
        positions = np.asarray(positions, dtype=np.int64)
        if sizes is not None:
            positions = positions[np.argsort(np.asarray(sizes, dtype=np.float64), kind="stable")]
        batches = [positions[i:i + self.batch_size] for i in range(0, len(positions), self.batch_size)]
        return [batches[i] for i in np.random.default_rng(0).permutation(len(batches))]

    def run(self, items, batches):
        """Yield (positions (B,), features (B, D) float32) per batch. `items[i]` is read when
        the batch holding i is prepared (see `prefetch`), so a lazy sequence keeps at most
        two batches in memory."""
        import torch

        processor, model, device = self.load()
        prepare, embed = _STEPS[self.modality]

        def inputs_of(positions):
            return prepare([items[i] for i in positions], processor, model, device)

        prefetch = self.prefetch if self.prefetch is not None else device.type != "cpu"
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool, torch.inference_mode():
            ahead = None
            for index, positions in enumerate(batches):
                inputs = ahead.result() if ahead is not None else inputs_of(positions)
                ahead = pool.submit(inputs_of, batches[index + 1]) if prefetch and index + 1 < len(batches) else None
                yield positions, embed(inputs, model).float().cpu().numpy()


def _with_progress(extractor: Extractor, results, total: int, progress: bool):
    """Pass `results` through, with a tqdm bar and, once a warm-up batch and at least
    `_TIMED_BATCHES` batches and `_TIMED_S` seconds were timed, one line with the item
    count, device and estimated time left."""
    with tqdm(total=total, desc=f"{extractor.modality} features", unit="item", disable=not progress) as bar:
        timed_from, timed_items, told = None, 0, False
        for index, (positions, rows) in enumerate(results):
            bar.update(len(positions))
            if index == 0:
                timed_from = time.perf_counter()  # the first batch also loads the model: not timed
            else:
                timed_items += len(positions)
            elapsed = time.perf_counter() - timed_from
            if not told and index >= _TIMED_BATCHES and elapsed >= _TIMED_S and bar.n < total:
                told, per_item = True, elapsed / timed_items
                message = (f"{extractor.modality} features: {total} items with {extractor.model_id} on "
                           f"{extractor.load()[2]}, {per_item * 1e3:.0f} ms per item, about "
                           f"{durations.readable(per_item * (total - bar.n))} left")
                bar.write(message, file=sys.stderr) if progress else logger.info(message)
            yield positions, rows


def extract_features(modality: str, items, model_id: str, revision: str | None = None, batch_size: int = 32,
                     device=None, progress: bool = True) -> np.ndarray:
    """Deep features of `items`, one row per item: (N, D) float32.

    modality: "image" (items: (H, W, 3) uint8 arrays, e.g. 32x32 CIFAR/EDM images),
    "audio" (items: (float32 samples in [-1, 1], sample rate in Hz) pairs; stereo as
    (frames, channels) is averaged to mono) or "text" (items: (text, class word) pairs;
    the class word is masked, see `mask_label_words`). See `Extractor` for the other
    arguments. Runs under `torch.inference_mode()`, with a tqdm bar if `progress`.
    """
    extractor = Extractor(modality, model_id, revision, batch_size, device)
    items = list(items)
    if not items:
        raise ValueError(f"no {modality} items to extract features from")
    sizes = None if modality == "image" else [item_size(modality, item) for item in items]
    out = None
    for positions, rows in _with_progress(extractor, extractor.run(items, extractor.plan(range(len(items)), sizes)),
                                          len(items), progress):
        if out is None:
            out = np.empty((len(items), rows.shape[1]), dtype=np.float32)
        out[positions] = rows
    return out


class FeatureCache:
    """Feature rows of single items, keyed by content digest, for one (modality, model, revision).

    Folder `<cache_dir>/<modality>-<hash of version, modality, model id, revision>/`, holding
    `.npz` files of `keys` (n, 16) uint8 digests and `features` (n, D) float32. Files are
    written whole (temporary file, then an atomic rename) and never changed, so concurrent
    builds can share the folder. A local folder as model_id is keyed by its path, not its
    contents: change `revision` after replacing the weights.
    """

    def __init__(self, cache_dir, modality: str, model_id: str, revision: str | None):
        _check_modality(modality)
        key = json.dumps([_CACHE_VERSION, modality, model_id, revision])
        self.folder = Path(cache_dir) / f"{modality}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}"
        _remove_stale_temporaries(Path(cache_dir))
        _remove_stale_temporaries(self.folder)

    def read(self, keys) -> dict:
        """{key: (D,) float32 row} for the keys of the set `keys` that are cached."""
        found = {}
        for path in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(path) as data:
                    stored = [k.tobytes() for k in data["keys"]]
                    hits = [i for i, k in enumerate(stored) if k in keys]
                    if hits:
                        rows = data["features"][hits]
                        found.update(zip((stored[i] for i in hits), rows))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # e.g. a full disk
                warnings.warn(f"unreadable feature cache file {path} ({err}); removing it, its features "
                              "are computed again", stacklevel=2)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return found

    def write(self, keys: list, features: np.ndarray) -> None:
        """Store (n, D) `features` of the n 16-byte `keys`."""
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
        name = hashlib.blake2b(key_array.tobytes(), digest_size=16).hexdigest()
        write_npz(self.folder / f"{name}.npz", {"keys": key_array, "features": features.astype(np.float32)})


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete `.*.tmp` files in `folder` not written to for `_STALE_TMP_S` (a killed write's)."""
    cutoff = time.time() - _STALE_TMP_S
    for path in folder.glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def cached_features(keys, items, extractor: Extractor, cache_dir, size_of=None, progress: bool = True) -> np.ndarray:
    """Features of every item, (N, D) float32, extracting only items whose key is not cached.

    keys: N 16-byte digests (`content_key`), the same key always meaning the same content.
    items: sequence of N items as `extract_features` takes them, indexed only at positions
    to compute, one batch at a time (it may read and decode lazily). size_of(i): optional
    size of item i (see `item_size`) for batching; called for positions to compute only.
    Items with equal keys are computed once. Computed rows are cached every `_FILE_ROWS`.
    """
    keys = [bytes(k) for k in keys]
    if not keys:
        raise ValueError(f"no {extractor.modality} items to extract features from")
    cache = FeatureCache(cache_dir, extractor.modality, extractor.model_id, extractor.revision)
    table = cache.read(set(keys))
    first = {}
    for position, key in enumerate(keys):
        if key not in table:
            first.setdefault(key, position)
    todo = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    logger.info("%s features: %d of %d items cached, %d to compute", extractor.modality,
                len(keys) - len(todo), len(keys), len(todo))
    if len(todo):
        sizes = None if size_of is None else [size_of(i) for i in todo]
        pending_keys, pending_rows, done = [], [], 0
        results = extractor.run(items, extractor.plan(todo, sizes))
        for positions, rows in _with_progress(extractor, results, len(todo), progress):
            pending_keys += [keys[i] for i in positions]
            pending_rows.append(rows)
            done += len(positions)
            if len(pending_keys) >= _FILE_ROWS or done == len(todo):
                block = np.concatenate(pending_rows)
                cache.write(pending_keys, block)
                table.update(zip(pending_keys, block))
                pending_keys, pending_rows = [], []
    return np.stack([table[k] for k in keys]).astype(np.float32, copy=False)
