"""Shared test helpers: loading the script by its path, decoding examples, running the report."""

import io
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[2]  # the checkout
TESTS = ROOT / "tests"
DATA = TESTS / "data"
SCRIPT = str(ROOT / "luma.py")


def load(name="clean", **kwargs):
    """`datasets.load_dataset` on the script's path (tests never rely on the folder's name)."""
    import datasets

    return datasets.load_dataset(SCRIPT, name, trust_remote_code=True, **kwargs)


def wav_samples(audio_bytes: bytes) -> np.ndarray:
    """int16 samples of a wav file's bytes."""
    samples, _ = soundfile.read(io.BytesIO(audio_bytes), dtype="int16")
    return samples


def rows(dataset) -> list:
    """Every example of a Dataset or IterableDataset with images as arrays and audio as raw bytes."""
    import datasets

    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    return [{**ex, "image": np.asarray(ex["image"])} for ex in dataset]


def built_rows(mirror_folder, cache_dir, name="clean", **kwargs) -> dict:
    """{split: rows(...)} of config `name` prepared from a folder mirror into `cache_dir`."""
    ds = load(name, mirror=str(mirror_folder), cache_dir=str(cache_dir), **kwargs)
    return {split: rows(ds[split]) for split in ds}


def write_report(runs_dir, out) -> Path:
    """Run the `report` command (through its own argument parser) on `runs_dir` into `out`; exit status 0."""
    import argparse

    from luma_noise.baselines import report

    parser = argparse.ArgumentParser()
    report.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", str(runs_dir), "--output-dir", str(out)])
    assert args.func(args) == 0
    return out
