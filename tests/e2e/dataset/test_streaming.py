"""Streaming shards in blocks: few shards, noise built once per process, nodes partition the data."""

import pytest
from datasets.distributed import split_dataset_by_node

from tests.support.helpers import load, rows
from luma_noise import examples
from luma_noise.noise import sample_noise

TEXT_NOISES = ["KeyboardNoise", "SpellingNoise", "OCRNoise"]  # the defaults without back-translation


def _fingerprint(examples):
    return [{k: (v.tobytes() if hasattr(v, "tobytes") else v) for k, v in ex.items()} for ex in examples]


def _ids(examples):
    return [(ex["image_index"], ex["audio_path"], ex["text_index"]) for ex in examples]


def test_blocks_are_few_consecutive_and_cover_the_split():
    def planned(n):
        return [{"key": i, "image": None} for i in range(n)]

    images = [f"png {i}" for i in range(21_000)]  # an ImageColumn's slices
    packed = examples.blocks(planned(21_000), images)
    assert all(isinstance(b, bytes) for b in packed)  # packed: num_proc hands them over as one copy
    blocks = [examples.unpack(b) for b in packed]
    assert len(blocks) == 83 and {len(b) for b in blocks[:-1]} == {256}
    assert [x for b in blocks for x in b] == [{"key": i, "image": f"png {i}"} for i in range(21_000)]
    assert len(examples.blocks(planned(84), images)) == examples.MIN_SHARDS
    assert examples.blocks([], images) == []


def test_streamed_sample_noise_builds_its_noise_once_and_equals_prepared(mirror, tmp_path, monkeypatch):
    kwargs = {"mirror": str(mirror[0]), "text_noises": TEXT_NOISES}
    built = []
    from_config = sample_noise.SampleNoise.from_config.__func__

    def counting(cls, *args):
        built.append(args)
        return from_config(cls, *args)

    monkeypatch.setattr(sample_noise.SampleNoise, "from_config", classmethod(counting))
    monkeypatch.setattr(sample_noise, "_PER_PROCESS", {})
    streamed = load("sample_noise", cache_dir=str(tmp_path / "s"), streaming=True, **kwargs)
    assert {split: streamed[split].n_shards for split in streamed} == {"train": 8, "test": 8, "ood": 8}
    streamed = {split: _fingerprint(rows(streamed[split])) for split in streamed}
    assert len(built) == 1, f"noise built {len(built)} times for 24 shards"
    prepared = load("sample_noise", cache_dir=str(tmp_path / "p"), **kwargs)
    assert streamed == {split: _fingerprint(rows(prepared[split])) for split in prepared}
    assert all(ex["noise"]["text"] for ex in streamed["test"])


@pytest.mark.parametrize("world_size", [2, 3])  # 8 shards: split by shard, or by example when uneven
def test_split_dataset_by_node_partitions_the_examples(mirror, tmp_path, world_size):
    streamed = load(mirror=str(mirror[0]), cache_dir=str(tmp_path / "s"), streaming=True, split="train")
    every = _ids(rows(streamed))
    parts = [_ids(rows(split_dataset_by_node(streamed, rank, world_size))) for rank in range(world_size)]
    assert sorted(x for part in parts for x in part) == sorted(every)
    assert all(parts)
