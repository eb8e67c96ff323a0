"""`clean` over a rate-limited HTTP mirror against the same mirror as a folder, and the wall time
to expect against the Hub's real limits.

    python benchmarks/bench_download.py                      # scale 0.1, 20 ms per request, 5 s windows
    python benchmarks/bench_download.py --scale 1.0 --window-s 30

Writes a fixture mirror (luma_noise.fixtures.mirror), prepares `clean` from it as a folder, then over a
loopback server (luma_noise.fixtures.hub) that adds `--latency-ms` per request, without a limit and
with a limit scaled to the mirror so the build needs as many windows as the real `clean` does on
the Hub anonymously (29,059 wavs at 3,000 per window: 10 windows). Prints the ratios to the folder
build, and the waits expected on the Hub per account type (windows of 5 minutes).
"""

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

REAL_WAVS = 29_059  # clean's examples on the real data (21,000 + 4,200 + 3,859), one wav each


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="mirror scale (1.0 = real row counts)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added per request by the server")
    parser.add_argument("--window-s", type=int, default=5, help="the server's rate-limit window (the Hub's: 300); "
                        "long enough that a window's requests take a fraction of it, as on the Hub")
    return parser.parse_args()


def prepare(mirror, cache):
    import luma_noise

    builder = luma_noise.loader.builder_class()(config_name="clean", cache_dir=str(cache), mirror=str(mirror))
    start = time.perf_counter()
    builder.download_and_prepare()
    return time.perf_counter() - start, sum(split.num_examples for split in builder.info.splits.values())


def main():
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="luma-bench-download-"))
    # the hub stays offline; `datasets` may reach the loopback mirror
    os.environ.update({"HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "0"})
    import datasets
    from luma_noise.fixtures.hub import ThrottledServer
    from luma_noise.upstream import download
    from luma_noise.fixtures.mirror import write_mirror

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    write_mirror(work / "mirror", scale=args.scale)
    folder_s, examples = prepare(work / "mirror", work / "folder-cache")
    print(f"folder mirror: {examples:,} examples in {folder_s:.1f} s")

    with ThrottledServer(work / "mirror", latency_s=args.latency_ms / 1000) as server:
        plain_s, _ = prepare(server.url, work / "plain-cache")
        files = len(server.log)
    print(f"HTTP, {args.latency_ms:g} ms per request, no limit: {files:,} requests in {plain_s:.1f} s "
          f"({plain_s / folder_s:.2f}x the folder build)")

    limit = math.ceil(files * 3000 / REAL_WAVS)  # as many windows as the real clean needs anonymously
    with ThrottledServer(work / "mirror", limit=limit, window_s=args.window_s, latency_s=args.latency_ms / 1000) as server:
        limited_s, _ = prepare(server.url, work / "limited-cache")
        refused = sum(1 for _, status in server.log if status == 429)
    # expected: the folder build, the waits for the windows, and the last window's requests
    expected = folder_s + download.expected_wait_s(files, limit, args.window_s) + (plain_s - folder_s) * limit / files
    print(f"HTTP, {args.latency_ms:g} ms per request, {limit} requests per {args.window_s} s window: {limited_s:.1f} s "
          f"({limited_s / folder_s:.2f}x the folder build; {refused} answers were 429); expected from the window: "
          f"{expected:.1f} s ({limited_s / expected:.2f}x)")

    transfer_s = REAL_WAVS * (plain_s - folder_s) / files  # per file at this latency, 8 connections
    print(f"expected for clean's {REAL_WAVS:,} wavs on the Hub (5-minute windows; transfer at this latency "
          f"about {transfer_s:.0f} s on top):")
    for who, hub_limit in download.HUB_LIMITS.items():
        wait = download.expected_wait_s(REAL_WAVS, hub_limit, download.HUB_WINDOW_S)
        print(f"  {who:>12}: {hub_limit:,} per 5 min -> {math.ceil(REAL_WAVS / hub_limit)} windows, "
              f"{wait / 60:.0f} min of waiting")


if __name__ == "__main__":
    main()
