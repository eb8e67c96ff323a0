"""Cost of `luma export` of a prepared config against `Dataset.to_parquet` of the same data.

    python benchmarks/bench_export.py --scale 1.0            # clean at the real row counts
    python benchmarks/bench_export.py --mirror M --config clean

Writes a fixture mirror (luma_noise.fixtures.mirror; cheap content, real formats and row counts at
--scale 1.0) unless --mirror names one, prepares the config once (not timed), then times,
alternately and --repeat times each, (a) the whole `luma export CONFIG --output-dir ...`
command in this process (finding the prepared cache, the summary from the built data, the
sharded Parquet files and the card) and (b) one `Dataset.to_parquet` per split of the
prepared splits (the floor: writing Parquet). Prints the best time of each, their ratio and
the sizes on disk (export folder, plain Parquet, the prepared Arrow cache).
"""

import argparse
import contextlib
import io
import os
import shutil
import time
from pathlib import Path

from workspace import mirror_folder, offline_workspace


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="clean")
    parser.add_argument("--scale", type=float, default=None, help="mirror scale (1.0 = real row counts); default: the test mirror")
    parser.add_argument("--mirror", help="reuse this mirror folder instead of writing one")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (best kept)")
    return parser.parse_args()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    args = parse_args()
    work = offline_workspace("luma-bench-export-")
    import datasets

    from luma_noise.cli import main as luma
    from luma_noise.variant import Variant, prepare, script_path

    datasets.disable_progress_bars()
    mirror = mirror_folder(args.mirror, work, args.scale)
    cache = work / "cache"
    start = time.perf_counter()
    built = prepare(Variant(args.config, {"mirror": mirror}), cache_dir=str(cache), script=script_path())
    print(f"prepared {args.config} in {time.perf_counter() - start:.1f} s: "
          + ", ".join(f"{split} {len(ds)}" for split, ds in built.items()))
    arrow_bytes = sum(Path(f["filename"]).stat().st_size for ds in built.values() for f in ds.cache_files)

    def export_run(out):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = luma(["export", args.config, "--mirror", mirror, "--cache-dir", str(cache), "--output-dir", str(out)])
        assert status == 0

    def parquet_run(out):
        out.mkdir(parents=True)
        for split, ds in built.items():
            ds.to_parquet(str(out / f"{split}.parquet"))

    best = {"luma export": float("inf"), "Dataset.to_parquet": float("inf")}
    for attempt in range(args.repeat):
        for label, run in (("luma export", export_run), ("Dataset.to_parquet", parquet_run)):
            out = work / f"{label.split()[0]}-{attempt}"
            start = time.perf_counter()
            run(out)
            best[label] = min(best[label], time.perf_counter() - start)
            if attempt < args.repeat - 1:
                shutil.rmtree(out)
    export_bytes = _size(work / f"luma-{args.repeat - 1}")
    parquet_bytes = _size(work / f"Dataset.to_parquet-{args.repeat - 1}")
    rows = sum(len(ds) for ds in built.values())
    print(f"config={args.config} rows={rows} repeat={args.repeat} cpus={os.cpu_count()}")
    for label, seconds in best.items():
        print(f"{label}: {seconds:.2f} s (best of {args.repeat})")
    print(f"ratio luma export / Dataset.to_parquet: {best['luma export'] / best['Dataset.to_parquet']:.2f}")
    print(f"on disk: export folder {export_bytes / 2**20:.1f} MiB (Parquet shards + README + provenance), "
          f"plain Parquet {parquet_bytes / 2**20:.1f} MiB, prepared Arrow cache {arrow_bytes / 2**20:.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
