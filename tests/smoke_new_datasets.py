"""Smoke test of `luma_noise.load` under whatever `datasets` is installed (CI: the newest, with
luma_noise installed from its wheel, run from a temp folder outside the checkout).

Run as `python smoke_new_datasets.py [--checkout PATH]` (CI copies this file alone to a temp folder; the
miniature mirror and tiny models come from the installed `luma_noise.fixtures`): builds a miniature mirror, loads
`clean` prepared and streaming through the packaged builder (no loading script), and checks
that both give the same examples of the expected sizes. With `--checkout`, it also checks that
`luma_noise` was imported from an installation, not from that checkout.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

home = tempfile.mkdtemp(prefix="luma-smoke-")
os.environ.update({"HF_HOME": home, "HF_DATASETS_CACHE": os.path.join(home, "datasets"),
                   "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})

import datasets  # noqa: E402

import luma_noise  # noqa: E402
from luma_noise.fixtures.mirror import write_mirror  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", help="the source checkout luma_noise must NOT be imported from")
    args = parser.parse_args()
    installed = Path(luma_noise.__file__).resolve().parent
    print(f"luma_noise {luma_noise.__version__} from {installed}")
    if args.checkout:
        assert Path(args.checkout).resolve() not in installed.parents, f"imported from the checkout: {installed}"
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
    check_export(root)
    print(f"smoke test passed under datasets {datasets.__version__}")


def check_export(root: Path) -> None:
    """`luma export` of clean, sample_noise (text noises without models) and label_noise_0.3 (tiny
    random feature models) into one folder: `load_dataset` on the folder gives the builder's rows
    and bytes, features as the card declares."""
    from luma_noise.cli import main as luma
    from luma_noise.fixtures.models import save_tiny_models

    out = Path(home) / "export"
    models = save_tiny_models(Path(home) / "models")
    variants = {"clean": {}, "sample_noise": {"text_noises": ["KeyboardNoise", "SpellingNoise", "OCRNoise"]},
                "label_noise_0.3": {f"{m}_feature_model": path for m, path in models.items()}}
    for name, fields in variants.items():
        sets = [arg for k, v in fields.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
        assert luma(["export", name, *sets, "--mirror", str(root), "--name", name, "--output-dir", str(out)]) == 0, name
    for name, fields in variants.items():
        exported = datasets.load_dataset(str(out), name)
        built = luma_noise.load(name, mirror=str(root), **fields)
        for split in built:
            assert isinstance(exported[split].features["audio"], datasets.Audio), "audio declared as Audio"
            assert [c for c in exported[split].features] == [c for c in built[split].features], (name, split)
            assert exported[split].with_format("arrow")[:].equals(built[split].with_format("arrow")[:]), (name, split)
        print(f"export {name}: load_dataset on the folder == builder ({', '.join(f'{s} {len(d)}' for s, d in built.items())})")


if __name__ == "__main__":
    main()
