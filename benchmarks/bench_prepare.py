"""Preparation speed and peak memory of a LUMA config built from a local mirror.

    python benchmarks/bench_prepare.py --scale 1.0                 # clean at the real row counts
    python benchmarks/bench_prepare.py --config sample_noise --set text_noises='["KeyboardNoise"]'

Writes a fixture mirror (tests/make_mirror.py; cheap content, real formats) unless
--mirror names one, prepares the config into a fresh cache and prints examples/s (all
splits, wall clock of download_and_prepare) and the peak resident memory of this process.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="clean")
    parser.add_argument("--scale", type=float, default=None, help="mirror scale (1.0 = real row counts); default: the small test mirror")
    parser.add_argument("--mirror", help="reuse this mirror folder instead of writing one")
    parser.add_argument("--num-proc", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="config field override, value as JSON")
    return parser.parse_args()


def main():
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="luma-bench-"))
    os.environ.update({"HF_HOME": str(work / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    import datasets
    import luma_noise
    from make_mirror import write_mirror

    datasets.disable_progress_bars()
    mirror = args.mirror
    if mirror is None:
        mirror = str(work / "mirror")
        start = time.perf_counter()
        write_mirror(mirror, scale=args.scale)
        print(f"mirror written in {time.perf_counter() - start:.1f} s (scale {args.scale})")
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    builder = luma_noise.loader.builder_class()(config_name=args.config, cache_dir=str(work / "cache"), mirror=mirror, **overrides)
    start = time.perf_counter()
    builder.download_and_prepare(num_proc=args.num_proc)
    seconds = time.perf_counter() - start
    sizes = {name: split.num_examples for name, split in builder.info.splits.items()}
    total = sum(sizes.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"config={args.config} splits={sizes} num_proc={args.num_proc} cpus={os.cpu_count()}")
    print(f"prepared {total} examples in {seconds:.1f} s: {total / seconds:.0f} examples/s; "
          f"peak RSS {peak_mb:.0f} MB (largest worker process {worker_mb:.0f} MB)")


if __name__ == "__main__":
    main()
