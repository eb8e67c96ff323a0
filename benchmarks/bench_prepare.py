"""Preparation speed and peak memory of a LUMA config built from a local mirror, against
the floor of writing the same examples.

    python benchmarks/bench_prepare.py --scale 1.0                 # clean at the real row counts
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --rounds 3   # best of 3 of each
    python benchmarks/bench_prepare.py --mirror /tmp/mirror --num-proc 2
    python benchmarks/bench_prepare.py --config sample_noise --set text_noises='["KeyboardNoise"]'

Writes a fixture mirror (tests/make_mirror.py; cheap content, real formats) unless
--mirror names one, prepares the config into a fresh cache and prints examples/s (all
splits, wall clock of download_and_prepare) and the peak resident memory of this process.

Then, in the same run, the floor: the examples the builder planned (its own
`_split_generators`, not timed) written with nothing else: each image PNG-encoded as the
builder does (`examples.png_bytes`), each wav file's bytes read, the records written to an
Arrow stream file per split with the config's schema, 256 rows per batch as the builder's
writer does, in one process. The ratio prepare / floor is what the builder adds on top
(reading and planning the upstream, `datasets`' encoding and bookkeeping); for noised
configs the noise is extra work the floor does not do.
"""

import argparse
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
    return parser.parse_args()


def planned_examples(builder, work: Path) -> dict:
    """{split: planned example dicts} as the builder plans them (not timed)."""
    import datasets

    dl_manager = datasets.DownloadManager(download_config=datasets.DownloadConfig(cache_dir=str(work / "floor-downloads")))
    return {str(gen.name): [ex for block in gen.gen_kwargs["blocks"] for ex in block]
            for gen in builder._split_generators(dl_manager)}


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (num_proc workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_floor(planned: dict, features, out_dir: Path) -> tuple:
    """(wall, CPU) seconds to PNG-encode, read the wavs of and write to Arrow every planned example."""
    import pyarrow as pa

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
                audio = []
                for ex in batch:
                    with open(ex["audio_file"], "rb") as f:
                        audio.append({"bytes": f.read(), "path": ex["audio_path"]})
                columns["audio"] = audio
                writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=schema))
    return time.perf_counter() - start, _cpu_seconds() - cpu


def main():
    args = parse_args()
    work = offline_workspace("luma-bench-")
    import datasets
    import luma_noise
    from luma_noise.cli import parse_set

    datasets.disable_progress_bars()
    mirror = mirror_folder(args.mirror, work, args.scale)
    overrides = dict(map(parse_set, args.set))  # FIELD=VALUE as every LUMA command reads it
    runs = []
    for round_ in range(args.rounds):
        builder = luma_noise.loader.builder_class()(
            config_name=args.config, cache_dir=str(work / f"cache{round_}"), mirror=mirror, **overrides)
        start, cpu = time.perf_counter(), _cpu_seconds()
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
