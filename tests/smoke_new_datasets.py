"""Smoke test of `luma_noise.load` under whatever `datasets` is installed (CI: the newest).

Run as `python tests/smoke_new_datasets.py`: builds a miniature mirror, loads `clean`
prepared and streaming through the builder class (no loading script), and checks that
both give the same examples of the expected sizes.
"""

import os
import sys
import tempfile
from pathlib import Path

home = tempfile.mkdtemp(prefix="luma-smoke-")
os.environ.update({"HF_HOME": home, "HF_DATASETS_CACHE": os.path.join(home, "datasets"),
                   "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
sys.path.insert(0, str(Path(__file__).parent))

import datasets  # noqa: E402

import luma_noise  # noqa: E402
from make_mirror import write_mirror  # noqa: E402


def main():
    root = Path(home) / "mirror"
    manifest = write_mirror(root)
    prepared = luma_noise.load("clean", mirror=str(root))
    streamed = luma_noise.load("clean", streaming=True, mirror=str(root))
    raw_audio = isinstance(prepared["train"].features["audio"], datasets.Audio)
    print("audio feature:", "Audio" if raw_audio else "plain {bytes, path} struct (no torchcodec)")
    for split in ("train", "test", "ood"):
        a, b = prepared[split], streamed[split]
        if raw_audio:
            a, b = (d.cast_column("audio", datasets.Audio(decode=False)) for d in (a, b))
        got = [(ex["image_index"], ex["audio_path"], ex["text_index"], ex["audio"]["bytes"]) for ex in a]
        assert got == [(ex["image_index"], ex["audio_path"], ex["text_index"], ex["audio"]["bytes"]) for ex in b], split
        print(f"{split}: {len(got)} examples, prepared == streaming")
    assert len(prepared["train"]) == len(manifest["splits"]["audio_train_clean"])
    print(f"smoke test passed under datasets {datasets.__version__}")


if __name__ == "__main__":
    main()
