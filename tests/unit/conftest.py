"""Unit tests build no dataset and train nothing: those belong in tests/e2e/ (this makes them fail here)."""

import pytest


@pytest.fixture(autouse=True)
def _no_build_or_training(monkeypatch):
    import datasets
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test built a dataset or trained a model: move it to tests/e2e/")

    monkeypatch.setattr(datasets.DatasetBuilder, "download_and_prepare", refuse)
    monkeypatch.setattr(datasets.DatasetBuilder, "as_streaming_dataset", refuse)
    monkeypatch.setattr(transformers.Trainer, "train", refuse)
