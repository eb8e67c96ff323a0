"""Streaming against preparing the same config from a local fixture mirror (ratio, same run).

    python benchmarks/bench_streaming.py --scale 0.02 --config sample_noise \
        --set text_noises='["KeyboardNoise","SpellingNoise","OCRNoise"]'

Prepares the config into a fresh cache (wall clock of download_and_prepare), then iterates
every split of the streaming dataset from a fresh cache, each in its own process (both pay the
same imports and one-off noise set-up), and prints both rates, the ratio and the shards per split.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sample_noise")
    parser.add_argument("--scale", type=float, default=0.02, help="mirror scale (1.0 = real row counts)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="config field override, value as JSON")
    parser.add_argument("--only", choices=["prepared", "streamed"], help=argparse.SUPPRESS)  # one measurement, internal
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args()


def measure(args):
    """Time one mode in this process; print "seconds examples shards-json"."""
    work = Path(args.work)
    os.environ.update({"HF_HOME": str(work / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    import datasets
    import luma_noise

    datasets.disable_progress_bars()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    builder = luma_noise.loader.builder_class()(
        config_name=args.config, cache_dir=str(work / args.only), mirror=str(work / "mirror"), **overrides)
    start = time.perf_counter()
    if args.only == "prepared":
        builder.download_and_prepare()
        shards, examples = {}, sum(split.num_examples for split in builder.info.splits.values())
    else:
        streamed = builder.as_streaming_dataset()
        shards = {split: streamed[split].n_shards for split in streamed}
        examples = sum(1 for split in streamed for _ in streamed[split])
    print(f"{time.perf_counter() - start} {examples} {json.dumps(shards)}")


def main():
    args = parse_args()
    if args.only:
        return measure(args)
    from luma_noise.fixtures.mirror import write_mirror

    work = Path(tempfile.mkdtemp(prefix="luma-bench-streaming-"))
    write_mirror(work / "mirror", scale=args.scale)
    results = {}
    for mode in ("prepared", "streamed"):
        command = [sys.executable, __file__, "--only", mode, "--work", str(work), "--config", args.config]
        command += [f"--set={item}" for item in args.set]
        last = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        seconds, examples, shards = last.split(" ", 2)
        results[mode] = (float(seconds), int(examples), json.loads(shards))
    (prepared_s, examples, _), (streamed_s, _, shards) = results["prepared"], results["streamed"]
    print(f"config={args.config} scale={args.scale} examples={examples:,} shards={shards}")
    print(f"prepared {prepared_s:.1f} s ({examples / prepared_s:.0f} ex/s), streamed {streamed_s:.1f} s "
          f"({examples / streamed_s:.0f} ex/s): streaming takes {streamed_s / prepared_s:.2f}x the preparation")


if __name__ == "__main__":
    main()
