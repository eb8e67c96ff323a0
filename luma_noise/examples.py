"""From a split plan to the examples the loading script yields.

`_split_generators` turns each plan into planned examples (`plan_examples`: one dict per example,
its text and the wav file to read) and packs them into blocks with their images (`blocks`, the
shards `datasets` distributes); `_generate_examples` reads each block's wavs, noises the examples
in batches and yields the records (`generate`).
"""

import io
import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import datasets
import numpy as np
from PIL import Image

from . import variants
from .classes import CLASSES, MODALITIES
from .upstream.fetcher import read_wavs
from .read_ahead import ahead
from .noise.sample_noise import image_settings

# Examples noised together: back-translation runs its models on batches of this many texts.
NOISE_BATCH = 64
# Examples per shard (block): noise objects live for a whole block, and `datasets` splits the
# blocks between num_proc jobs, DataLoader workers and nodes. At least MIN_SHARDS per split.
SHARD_EXAMPLES = 4 * NOISE_BATCH
MIN_SHARDS = 8

_NOISE_RECORD = {"name": datasets.Value("string"), "params": datasets.Value("string")}


def _audio_feature():
    """`Audio`, or on `datasets` >= 4 without torchcodec (which `Audio` needs even to store
    bytes) its Arrow storage as a plain struct: `cast_column("audio", Audio())` once it's there."""
    if int(datasets.__version__.split(".")[0]) < 4 or datasets.config.TORCHCODEC_AVAILABLE:
        return datasets.Audio()
    return {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}


def extra_columns(config) -> dict:
    """{column: kind} a config adds to clean's columns: its variants' (`original_label` for label
    noise, `conflict_modality` for conflict) and `noise` (kind "noise") when it noises samples."""
    columns = variants.extra_columns(config)
    if image_settings(config).ratio or config.audio_noise_ratio or config.text_noise_ratio:
        columns["noise"] = "noise"
    return columns


def features_for(config) -> datasets.Features:
    """The features of a config's examples: clean's, plus its `extra_columns`."""
    features = datasets.Features({
        "image": datasets.Image(),
        "audio": _audio_feature(),
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(CLASSES)),
        "image_source": datasets.Value("string"),
        "image_index": datasets.Value("int64"),
        "audio_path": datasets.Value("string"),
        "text_index": datasets.Value("int64"),
    })
    kinds = {"label": lambda: datasets.ClassLabel(names=list(CLASSES)), "string": lambda: datasets.Value("string"),
             "noise": lambda: {m: dict(_NOISE_RECORD) for m in MODALITIES}}
    for column, kind in extra_columns(config).items():
        features[column] = kinds[kind]()
    return features


class ImageColumn:
    """The image of each of a plan's examples, in order, read by slices: its pixels, or with
    `pool` (a thread pool) its PNG bytes, encoded in the pool meanwhile, _CHUNK images a task.

    Un-noised images are encoded while the builder checks the wavs and plans (Pillow's encoder
    releases the GIL), not while `datasets` writes; a slice waits only for the chunks it
    covers. Only the selected images are copied, once.
    """

    def __init__(self, plan, upstream, pool=None):
        self.pixels = np.ascontiguousarray(upstream.image_frame(plan.split).images[plan.image_rows])
        self.chunks = None if pool is None else [pool.submit(_png_chunk, self.pixels[start:start + _CHUNK])
                                                 for start in range(0, len(self.pixels), _CHUNK)]

    def __getitem__(self, rows: slice) -> list:  # rows: start and stop given, as `_blocks` slices
        if self.chunks is None:
            return list(self.pixels[rows])
        first = rows.start // _CHUNK
        encoded = [png for chunk in self.chunks[first:-(-rows.stop // _CHUNK)] for png in chunk.result()]
        return encoded[rows.start - first * _CHUNK:rows.stop - first * _CHUNK]


_CHUNK = 256


def _png_chunk(images: np.ndarray) -> list:
    return [png_bytes(image) for image in images]


def plan_examples(plan, upstream, audio_files: list, config) -> list:
    """One dict per example of `plan`, with its text and audio file to read and its variants'
    columns (on every split, also those the variant leaves alone); its image is set block by
    block from an `ImageColumn` when the blocks are packed (`blocks`).

    Only the selected images travel with the examples (3 KiB each), so `num_proc` workers
    receive their shard without the whole frames.
    """
    sources = upstream.image_frame(plan.split).sources[plan.image_rows]
    audio_paths = upstream.audio["path"].to_numpy()[plan.audio_rows]
    texts = upstream.text["text"].to_numpy()[plan.text_rows]
    kinds = variants.extra_columns(config)
    extra = {column: ([int(v) for v in values] if kinds[column] == "label" else list(values))
             for column, values in variants.column_values(plan, config).items()}
    return [
        {
            "key": str(plan.keys[i]),
            "label": int(plan.labels[i]),
            "image": None,
            "image_source": str(sources[i]),
            "image_index": int(plan.image_rows[i]),
            "audio_path": str(audio_paths[i]),
            "audio_file": audio_files[i],
            "text": str(texts[i]),
            "text_index": int(plan.text_rows[i]),
            **{column: values[i] for column, values in extra.items()},
        }
        for i in range(len(plan))
    ]


def pack_splits(plans: dict, upstream, fetcher, config) -> dict:
    """{split: (packed blocks, number of examples)} of each split's plan: its examples planned
    with the wav files they store (`fetcher.stored_wavs`, every header checked before anything
    is written) and packed with their images (`blocks`). Images that no noise touches are
    PNG-encoded in two threads meanwhile; a bad wav stops the encoding."""
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        images = {split: ImageColumn(plan, upstream, None if image_settings(config).ratio else pool)
                  for split, plan in plans.items()}
        stored = fetcher.stored_wavs({split: upstream.audio["path"].to_numpy()[plan.audio_rows]
                                      for split, plan in plans.items()})
        planned = {split: plan_examples(plan, upstream, stored[split], config) for split, plan in plans.items()}
        return {split: (blocks(planned[split], images[split]), len(planned[split])) for split in plans}
    finally:
        pool.shutdown(cancel_futures=True)


def blocks(planned: list, images) -> list:
    """`planned` cut into consecutive blocks of at most SHARD_EXAMPLES (fewer when the split is
    small), each given its images (`images[start:end]`, an `ImageColumn`: a block is packed as
    soon as its images are encoded) and packed as one pickle (`unpack`): `datasets` hands the
    blocks to num_proc workers through dill, which pickles lists of dicts in pure Python (1.1 CPU
    s for clean's train split) but a bytes object as one copy. The pickles are made here and read
    by this package only. The planned examples are left as they are."""
    size = max(1, min(SHARD_EXAMPLES, math.ceil(len(planned) / MIN_SHARDS)))
    packed = []
    for start in range(0, len(planned), size):
        block = [{**example, "image": pixels_or_png}
                 for example, pixels_or_png in zip(planned[start:start + size], images[start:start + size])]
        packed.append(pickle.dumps(block, protocol=pickle.HIGHEST_PROTOCOL))
    return packed


def unpack(block: bytes) -> list:
    """The planned examples of a block made by `blocks`."""
    return pickle.loads(block)


def generate(packed_blocks, split: str, noise, fetch_options):
    """(key, record) of every example of `packed_blocks`, in order: each block's wavs read (or
    fetched when streaming, `fetcher.read_wavs`), its examples noised by `noise` (a SampleNoise
    or None) in batches of NOISE_BATCH (so batches are the same prepared, streaming and with
    any num_proc), in a background thread while `datasets` encodes and writes the block before."""
    def finish(block):
        block = unpack(block)
        audio_bytes = read_wavs([example["audio_file"] for example in block], fetch_options)
        return [pair for start in range(0, len(block), NOISE_BATCH)
                for pair in finish_batch(block[start:start + NOISE_BATCH], audio_bytes[start:start + NOISE_BATCH],
                                         split, noise)]

    for finished in ahead(finish, packed_blocks):
        yield from finished


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W, 3) uint8 image; the same pixels always give the same bytes.

    Compression level 1: 40 % faster than the default for 3 % more bytes on 32x32 images.
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def finish_batch(batch: list, audio: list, split: str, noise=None) -> list:
    """(key, record) pairs for a batch of planned examples and their audio files' bytes.

    With `noise` (a SampleNoise), content is noised (in copies: the planned examples are
    left as they are) and each record gets its `noise`.
    """
    if noise is not None:
        batch = noise.apply([{**example, "audio_bytes": audio_bytes} for example, audio_bytes in zip(batch, audio)], split)
        audio = [example["audio_bytes"] for example in batch]
    return [(example["key"], finish_example(example, audio_bytes)) for example, audio_bytes in zip(batch, audio)]


_NOT_STORED = frozenset(("key", "audio_file", "audio_bytes"))


def finish_example(example: dict, audio_bytes: bytes) -> dict:
    """The yielded record: the planned fields, the image as PNG (encoded here unless it was
    planned encoded) and the audio as wav bytes."""
    record = {k: v for k, v in example.items() if k not in _NOT_STORED}
    image = example["image"]
    record["image"] = {"path": None, "bytes": image if isinstance(image, bytes) else png_bytes(image)}
    # no path: `datasets` keeps only the path, not the bytes, of a path that names a file from the
    # working directory (run from the upstream's audio folder, that is every one); see `audio_path`
    record["audio"] = {"path": None, "bytes": audio_bytes}
    return record
