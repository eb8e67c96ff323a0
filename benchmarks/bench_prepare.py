"""Preparation speed and peak memory of a LUMA config built from a local mirror, against
the floor of writing the same examples.

    python benchmarks/bench_prepare.py --scale 1.0                 # clean at the real row counts
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --rounds 3   # best of 3 of each
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --num-proc 2
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --phases    # when each step ran
    python benchmarks/bench_prepare.py --config sample_noise --set text_noises='["KeyboardNoise"]'
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --config sample_noise --random-opus-mt --no-floor

Writes a fixture mirror (luma_noise.fixtures.mirror; cheap content, real formats) unless
--mirror names one, prepares the config into a fresh cache and prints examples/s (all
splits, wall clock of download_and_prepare) and the peak resident memory of this process.

Then, in the same run, the floor: the examples the builder planned (its own
`_split_generators`, not timed) written with nothing else: each image PNG-encoded as the
builder does (`examples.png_bytes`; the builder plans un-noised images already encoded, so they
are decoded back to pixels first, untimed), each wav file's bytes read as the builder reads them, the records written to an
Arrow stream file per split with the config's schema, 256 rows per batch as the builder's
writer does, in one process. The ratio prepare / floor is what the builder adds on top
(reading and planning the upstream, `datasets`' encoding and bookkeeping); for noised
configs the noise is extra work the floor does not do.
"""

import argparse
import io
import os
import resource
import time
from pathlib import Path

from workspace import mirror_folder, offline_workspace

_BATCH = 256  # rows per Arrow record batch, the builder's DEFAULT_WRITER_BATCH_SIZE


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="clean")
    parser.add_argument("--scale", type=float, default=None, help="mirror scale (1.0 = real row counts); default: the small test mirror")
    parser.add_argument("--mirror", help="reuse this mirror folder instead of writing one")
    parser.add_argument("--num-proc", type=int, default=None)
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurement")
    parser.add_argument("--rounds", type=int, default=1, help="prepare (into fresh caches) and floor this many times each; the best counts")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="config field override, value as JSON")
    parser.add_argument("--phases", action="store_true",
                        help="also print when each phase of the last prepare ran (reading the upstream, plans, "
                             "encoding images with the wav checks, packing blocks, each split)")
    parser.add_argument("--random-opus-mt", action="store_true",
                        help="back-translate with random models of opus-mt's size (the default's architecture; the "
                             "checkpoints cannot be downloaded here), every translation running to 40 tokens")
    return parser.parse_args()


def random_opus_mt(work: Path, overrides: dict) -> dict:
    """`overrides` with BackTranslationNoise pointed at random Marian models of opus-mt-en-de/-de-en's
    size saved in `work` (luma_noise/fixtures/marian.py). Random weights never end a translation early, so
    max_length=40 gives the compute of a real translation of a LUMA passage (about 35 words)."""
    from luma_noise.fixtures.marian import build_marian_model

    paths = [build_marian_model(work / f"opus-mt-{pair}", seed, "opus-mt")[0] for seed, pair in enumerate(("en-de", "de-en"))]
    params = dict(overrides.get("text_noise_params") or {})
    params["BackTranslationNoise"] = {**params.get("BackTranslationNoise", {}),
                                      "from_model_name": paths[0], "to_model_name": paths[1], "max_length": 40}
    return {**overrides, "text_noise_params": params}


def record_phases(builder_class) -> list:
    """[(phase, start, end)] filled in as the builder runs (seconds since the timer's reset,
    `phases[0]`): its own steps, and `datasets` writing each split."""
    import datasets.builder

    phases = [time.perf_counter()]

    def timed(owner, name, label):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                split = getattr(args[1], "name", "") if label == "write split" else ""
                phases.append((f"{label} {split}".strip(), start - phases[0], time.perf_counter() - phases[0]))
        setattr(owner, name, wrapper)

    from luma_noise.upstream import fetcher, variants

    timed(fetcher.Fetcher, "read_upstream", "read the upstream")
    timed(variants, "plan_splits", "plans")
    timed(fetcher.Fetcher, "stored_wavs", "check the stored wavs (images encode meanwhile)")
    timed(builder_class, "_split_generators", "split generators in all")
    timed(datasets.builder.GeneratorBasedBuilder, "_prepare_split", "write split")
    return phases


def planned_examples(builder, work: Path) -> dict:
    """{split: planned example dicts} as the builder plans them (not timed)."""
    import datasets
    import numpy as np
    from PIL import Image

    from luma_noise.examples import unpack

    dl_manager = datasets.DownloadManager(download_config=datasets.DownloadConfig(cache_dir=str(work / "floor-downloads")))
    planned = {str(gen.name): [ex for block in gen.gen_kwargs["blocks"] for ex in unpack(block)]
               for gen in builder._split_generators(dl_manager)}
    for split_examples in planned.values():  # un-noised images are planned PNG-encoded: the floor encodes pixels
        for ex in split_examples:
            if isinstance(ex["image"], bytes):
                ex["image"] = np.asarray(Image.open(io.BytesIO(ex["image"])))
    return planned


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (num_proc workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_floor(planned: dict, features, out_dir: Path) -> tuple:
    """(wall, CPU) seconds to PNG-encode, read the wavs of and write to Arrow every planned example."""
    import pyarrow as pa

    from luma_noise.upstream.fetcher import read_file  # the builder's own read
    from luma_noise.examples import png_bytes

    schema = features.arrow_schema
    out_dir.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), _cpu_seconds()
    for split, examples in planned.items():
        with pa.OSFile(str(out_dir / f"{split}.arrow"), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for first in range(0, len(examples), _BATCH):
                batch = examples[first:first + _BATCH]
                columns = {name: [ex[name] for ex in batch] for name in schema.names if name not in ("image", "audio")}
                columns["image"] = [{"bytes": png_bytes(ex["image"]), "path": None} for ex in batch]
                columns["audio"] = [{"bytes": read_file(ex["audio_file"]), "path": None} for ex in batch]
                writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=schema))
    return time.perf_counter() - start, _cpu_seconds() - cpu


def main():
    args = parse_args()
    work = offline_workspace("luma-bench-")
    import datasets
    import luma_noise
    from luma_noise.set_option import parse_set

    datasets.disable_progress_bars()
    mirror = mirror_folder(args.mirror, work, args.scale)
    overrides = dict(map(parse_set, args.set))  # FIELD=VALUE as every LUMA command reads it
    if args.random_opus_mt:
        overrides = random_opus_mt(work, overrides)
    runs = []
    phases = record_phases(luma_noise.loader.builder_class()) if args.phases else None
    for round_ in range(args.rounds):
        builder = luma_noise.loader.builder_class()(
            config_name=args.config, cache_dir=str(work / f"cache{round_}"), mirror=mirror, **overrides)
        start, cpu = time.perf_counter(), _cpu_seconds()
        if phases:
            phases[:] = [start]
        builder.download_and_prepare(num_proc=args.num_proc)
        runs.append((time.perf_counter() - start, _cpu_seconds() - cpu))
    seconds, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
    total = sum(sizes.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"config={args.config} splits={sizes} num_proc={args.num_proc} cpus={os.cpu_count()} "
          f"load average {os.getloadavg()[0]:.1f}; prepare runs (wall s): {', '.join(f'{r[0]:.1f}' for r in runs)}")
    print(f"prepared {total} examples in {seconds:.1f} s ({cpu:.1f} CPU s): {total / seconds:.0f} examples/s; "
          f"peak RSS {peak_mb:.0f} MB (largest worker process {worker_mb:.0f} MB)")
    if phases:
        print("phases of the last prepare (s from its start): " + "; ".join(
            f"{name} {begin:.2f}-{end:.2f}" for name, begin, end in phases[1:]))
    if args.no_floor:
        return
    start = time.perf_counter()
    planned = planned_examples(builder, work)
    plan_seconds = time.perf_counter() - start
    floors = [write_floor(planned, builder.info.features, work / "floor") for _ in range(args.rounds)]
    floor, floor_cpu = min(f[0] for f in floors), min(f[1] for f in floors)
    print(f"floor (PNG-encode, read wavs, write Arrow; one process): {floor:.1f} s ({floor_cpu:.1f} CPU s) for "
          f"{sum(map(len, planned.values()))} examples; reading and planning the upstream took {plan_seconds:.1f} s")
    print(f"prepare / floor (best of {args.rounds}) = {seconds / floor:.2f} wall clock, {cpu / floor_cpu:.2f} CPU time "
          f"(CPU time is steadier on a shared machine; num_proc workers count once they exit)")


if __name__ == "__main__":
    main()
