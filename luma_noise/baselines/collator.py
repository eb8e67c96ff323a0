"""`LumaCollator`: rows of LUMA as `load_dataset` returns them -> the model's input tensors.

The same per-example functions (`inputs.py`) serve two paths that give identical tensors:
- raw: the collator decodes images and audio and embeds texts batch by batch (texts are
  memoised, so BERT runs once per text per process);
- cached: `featurize_dataset` runs them once through `datasets`' `map`, cached on disk under
  a fingerprint of (dataset, mode, modalities, text model and, for a local folder, a digest of
  its files); the collator then only stacks.

Inputs are stored flat (fixed-length float32 lists, not `Array3D`) and read as numpy: `datasets`
converts an `Array3D` row by row through its extension type, which cost about an eighth of the
image network's training epoch; flat numpy reads are 7-10x cheaper (docs/performance.md, "The
training path"). The Trainer reads them through `BatchReader`: one gather per column and batch,
handed to the collator as columns (`datasets` splits a batch into rows for the collator to stack again:
2.2-6.0 ms per batch of 128 against 0.10-0.81 ms, on an 11 ms text training step).
"""

import hashlib
import json

import numpy as np

from . import inputs

# model input name -> the modality it encodes
INPUT_NAMES = {"image": "pixel_values", "audio": "audio_features", "text": "text_embeddings"}
ALL_MODALITIES = ("image", "audio", "text")
# per-example shape of each fixed-shape input (text: (D,), the text model's width)
INPUT_SHAPES = {"pixel_values": (3, 32, 32), "audio_features": (1, inputs.N_MELS, inputs.FRAMES)}


def check_modalities(modalities) -> tuple:
    modalities = tuple(modalities)
    bad = [m for m in modalities if m not in ALL_MODALITIES]
    if bad or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names among {ALL_MODALITIES}, got {modalities!r}")
    return tuple(m for m in ALL_MODALITIES if m in modalities)  # canonical order: image, audio, text


class LumaCollator:
    """Collate LUMA rows into `{"pixel_values", "audio_features", "text_embeddings", "labels"}`.

    pixel_values (B, 3, 32, 32), audio_features (B, 1, 128, 128), text_embeddings (B, D)
    float32; labels (B,) int64 (the `label` column). Only the `modalities` asked for are
    built. text_model: Hub id or local folder of the BERT used for text embeddings (needed
    when "text" is among the modalities and the rows carry raw text). mode: "fixed" or
    "faithful" audio (see `inputs`). Rows already holding an input (from
    `featurize_dataset`) are only stacked.
    """

    def __init__(self, text_model: str | None = "bert-base-uncased", mode: str = "fixed",
                 modalities=ALL_MODALITIES, text_revision: str | None = None):
        self.mode = inputs.check_mode(mode)
        self.modalities = check_modalities(modalities)
        if "text" in self.modalities and not text_model:
            raise ValueError("text_model is needed for the text modality (a Hub id or a local folder)")
        self.text_model, self.text_revision = text_model, text_revision
        self.embedder = inputs.TextEmbedder(text_model, text_revision) if "text" in self.modalities else None

    def featurize(self, batch: dict, modalities=None) -> dict:
        """Columns of model inputs (lists of flat float32 numpy arrays; `__call__` gives them their
        INPUT_SHAPES) for a `datasets` batch (dict of lists), for `modalities` (default: the collator's)."""
        modalities = self.modalities if modalities is None else modalities
        out = {}
        if "image" in modalities:
            out["pixel_values"] = [inputs.image_tensor(x).numpy().reshape(-1) for x in batch["image"]]
        if "audio" in modalities:
            out["audio_features"] = [inputs.audio_tensor(x, self.mode).numpy().reshape(-1) for x in batch["audio"]]
        if "text" in modalities:
            rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
            embeddings = self.embedder([(r["text"], inputs.class_word(r)) for r in rows])
            out["text_embeddings"] = [e.numpy() for e in embeddings]
        return out

    def __call__(self, rows) -> dict:
        """`rows`: a list of rows ({column: value}), or a batch's `Columns` (`BatchReader`: only the
        inputs of the model's modalities, already stacked)."""
        import torch

        columns = isinstance(rows, Columns)
        batch = rows if columns else {key: [row[key] for row in rows] for key in rows[0]}
        size = len(batch["label"])
        modalities = [m for m in self.modalities if INPUT_NAMES[m] in batch] if columns else self.modalities
        missing = [m for m in modalities if INPUT_NAMES[m] not in batch]
        if missing:
            batch.update(self.featurize(batch, missing))
        out = {}
        for m in modalities:  # one numpy stack and one tensor per input, shaped (B, *INPUT_SHAPES)
            name = INPUT_NAMES[m]
            stacked = batch[name] if columns else np.stack([np.asarray(x, np.float32) for x in batch[name]])
            out[name] = torch.from_numpy(stacked.reshape(size, *INPUT_SHAPES.get(name, stacked.shape[1:])))
        out["labels"] = torch.as_tensor(batch["label"], dtype=torch.int64)
        if "example_index" in batch:  # a stable dataset index (methods.with_example_index; QMF's history)
            out["example_index"] = torch.as_tensor([int(i) for i in batch["example_index"]], dtype=torch.int64)
        return out


class Columns(dict):
    """One batch as {column: its values}: the inputs of a model's modalities as one (B, n) float32
    array each, label and example_index as int arrays (what `BatchReader` gives the collator in
    place of a list of rows)."""


class BatchReader:
    """A featurised `Dataset` (`featurize_dataset`) as the Trainer's DataLoader reads it: the same
    length and rows (so the same sampler, batches and numbers), but the DataLoader's batch call
    (`__getitems__`) gathers the columns the collator reads straight into one array per column,
    returned as `Columns`. `datasets`' own batch read takes one chunk per row and splits the batch
    into rows for the collator to stack again: 2.6 ms per 128 text rows against 0.10 ms
    (docs/performance.md). Pickled (to DataLoader workers) as the dataset, i.e. by its cache files,
    not its Arrow data."""

    def __init__(self, dataset, modalities=ALL_MODALITIES):
        import pyarrow as pa

        self.dataset, self.modalities = dataset, check_modalities(modalities)
        needed = [*(INPUT_NAMES[m] for m in self.modalities), "label", "example_index"]
        self.table = dataset.data.table.select([c for c in dataset.column_names if c in needed])
        mapping = dataset._indices  # the rows a `train_test_split` or `select` kept (None: all, in order)
        self.rows = None if mapping is None else mapping.column(0).to_numpy().astype(np.int64)  # stored uint64
        self.inputs = {name: _ChunkRows(self.table.column(name)) for name in self.table.column_names
                       if pa.types.is_fixed_size_list(self.table.schema.field(name).type)}  # the model inputs

    def __getstate__(self) -> dict:
        return {"dataset": self.dataset, "modalities": self.modalities}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]

    def __getitems__(self, indices: list) -> Columns:
        import pyarrow as pa

        rows = np.asarray(indices, dtype=np.int64) if self.rows is None else self.rows[indices]
        out = Columns()
        for name in self.table.column_names:
            if name in self.inputs:  # a model input: (B, n), a new (writable) array
                out[name] = self.inputs[name].gather(rows)
            else:
                column = self.table.column(name).take(rows)
                out[name] = np.array(column.to_numpy()) if pa.types.is_integer(column.type) else column.to_pylist()
        return out


class _ChunkRows:
    """A fixed-size-list column of an Arrow table as one (rows, n) numpy view per chunk (no copy of
    the memory-mapped cache). `gather` copies the asked rows once into a new array: an Arrow take
    then a concatenation copied them twice, about 2.5x the time in a training loop (cold caches)."""

    def __init__(self, column):
        n = column.type.list_size
        self.views = [chunk.flatten().to_numpy(zero_copy_only=False).reshape(len(chunk), n) for chunk in column.chunks]
        self.starts = np.cumsum([0] + [len(chunk) for chunk in column.chunks])[:-1]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        if len(self.views) == 1:
            return self.views[0][rows]
        chunk = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), self.views[0].shape[1]), dtype=self.views[0].dtype)
        for c in np.unique(chunk):
            here = chunk == c
            out[here] = self.views[c][rows[here] - self.starts[c]]
        return out


def batch_reader(dataset, modalities):
    """`BatchReader(dataset)` for a `datasets.Dataset` holding the inputs of every one of `modalities`
    (`featurize_dataset`'s); any other dataset (a stream, rows the collator featurises) as it is."""
    import datasets

    names = [INPUT_NAMES[m] for m in check_modalities(modalities)]
    if isinstance(dataset, datasets.Dataset) and all(n in dataset.column_names for n in names):
        return BatchReader(dataset, modalities)
    return dataset


def _input_features(modalities, text_dim: int):
    import datasets

    lengths = {"image": int(np.prod(INPUT_SHAPES["pixel_values"])),
               "audio": int(np.prod(INPUT_SHAPES["audio_features"])), "text": text_dim}
    return {INPUT_NAMES[m]: datasets.Sequence(datasets.Value("float32"), length=lengths[m]) for m in modalities}


def featurize_dataset(dataset, collator: LumaCollator, batch_size: int = 64, num_proc: int | None = None):
    """`dataset` with the model inputs as columns (label and conflict_modality kept), cached.

    A prepared `Dataset` is mapped once and cached by `datasets` under a fingerprint of the
    dataset, the mode, the modalities and the text model; a streaming `IterableDataset` is
    returned as it is (the collator featurises each batch, memoising text embeddings).
    Returns a Dataset whose input columns read as numpy arrays (flat: the collator shapes them),
    the others as Python values.
    """
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return dataset
    keep = [c for c in ("label", "conflict_modality") if c in dataset.column_names]
    key = json.dumps([dataset._fingerprint, collator.mode, collator.modalities, collator.text_model,
                      collator.text_revision, _text_model_digest(collator), "baselines-inputs-2"])
    features = dict(dataset.features.copy())
    features = datasets.Features({**{c: features[c] for c in keep}, **_input_features(collator.modalities,
                                                                                      text_dim_of(collator))})
    mapped = dataset.map(collator.featurize, batched=True, batch_size=batch_size, num_proc=num_proc,
                         remove_columns=[c for c in dataset.column_names if c not in keep], features=features,
                         new_fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16], desc="model inputs")
    return input_format(mapped, collator.modalities)


def input_format(dataset, modalities):
    """`dataset` (with the model inputs of `modalities` as flat columns) read as the collator
    expects: the inputs as numpy arrays, every other column as Python values."""
    return dataset.with_format("numpy", columns=[INPUT_NAMES[m] for m in check_modalities(modalities)],
                               output_all_columns=True)


def _text_model_digest(collator: LumaCollator) -> str | None:
    """Content digest of a local text model folder (weights replaced in place give new
    embeddings, not the cached ones); None for a Hub id (its revision is in the key)."""
    from pathlib import Path

    from .rundir import model_folder_digest

    if collator.embedder is None or not Path(collator.text_model).expanduser().is_dir():
        return None
    return model_folder_digest(Path(collator.text_model).expanduser())


def text_dim_of(collator: LumaCollator) -> int:
    if collator.embedder is None:
        return 0
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(collator.text_model, revision=collator.text_revision).hidden_size)
