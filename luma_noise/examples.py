"""From a split plan to the examples the loading script yields."""

import io

import datasets
import numpy as np
from PIL import Image

from .classes import CLASSES


def features_for(config) -> datasets.Features:
    """The features of a config's examples."""
    return datasets.Features({
        "image": datasets.Image(),
        "audio": datasets.Audio(),
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(CLASSES)),
        "image_source": datasets.Value("string"),
        "image_index": datasets.Value("int64"),
        "audio_path": datasets.Value("string"),
        "text_index": datasets.Value("int64"),
    })


def examples(plan, upstream, audio_files: list) -> list:
    """One dict per example of `plan`, with its image pixels, text and audio file to read.

    Only the selected images travel in the list (3 KiB each), so `num_proc` workers
    receive their shard without the whole frames.
    """
    frame = upstream.image_frame(plan.split)
    audio_paths = upstream.audio["path"].to_numpy()[plan.audio_rows]
    texts = upstream.text["text"].to_numpy()[plan.text_rows]
    return [
        {
            "key": str(plan.keys[i]),
            "label": int(plan.labels[i]),
            "image": np.ascontiguousarray(frame.images[plan.image_rows[i]]),
            "image_source": str(frame.sources[plan.image_rows[i]]),
            "image_index": int(plan.image_rows[i]),
            "audio_path": str(audio_paths[i]),
            "audio_file": audio_files[i],
            "text": str(texts[i]),
            "text_index": int(plan.text_rows[i]),
        }
        for i in range(len(plan))
    ]


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of an (H, W, 3) uint8 image; the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def finish_example(example: dict, audio_bytes: bytes) -> dict:
    """The yielded record: the planned fields, the image as PNG and the audio file's bytes."""
    record = {k: v for k, v in example.items() if k not in ("key", "audio_file")}
    record["image"] = {"path": None, "bytes": png_bytes(example["image"])}
    record["audio"] = {"path": example["audio_path"], "bytes": audio_bytes}
    return record
