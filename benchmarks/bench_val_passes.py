"""How many MC dropout passes the per-epoch validation needs: the early-stopping epoch (best
validation loss) of MC dropout runs validated with T_val passes against T_val = 100 (the reference),
on the fixture mirror, same seeds otherwise. Prints one table (and --json writes it).

    python benchmarks/bench_val_passes.py [--seeds 1 2 3] [--passes 2 5 10 20] [--modalities image audio]
        [--max-epochs 40] [--patience 5] [--per-class-train 6]

A T_val that gives the same stopping epoch as 100 on (nearly) every run costs 100 / T_val less
validation at no change of the trained model; `settings.VAL_MC_SAMPLES_FIXED` is chosen from this.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--passes", type=int, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument("--modalities", nargs="+", default=["image", "audio"])
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--per-class-train", type=int, default=6, help="mirror rows per class (train)")
    parser.add_argument("--planted", action="store_true",
                        help="the planted mirror (classes visible in the images), where the models learn")
    parser.add_argument("--json", help="write the table here as JSON")
    parser.add_argument("--work", help="working folder (default: a new temporary one); a rerun on the same one "
                                       "reuses the finished runs")
    args = parser.parse_args(argv)

    from luma_noise.baselines.train import run_training
    from luma_noise.fixtures.mirror import write_mirror

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-val-passes-"))
    if not (work / "mirror" / "manifest.json").is_file():
        write_mirror(work / "mirror", per_class_train=args.per_class_train, planted=args.planted)
    rows = []
    for t_val in [100] + [t for t in args.passes if t != 100]:
        for seed in args.seeds:
            start = time.perf_counter()
            results = run_training(
                "clean", work / f"runs-{t_val}-{seed}", mirror=str(work / "mirror"), cache_dir=str(work / "cache"),
                methods=("mcd",), modalities=tuple(args.modalities), seeds=(seed,), max_epochs=args.max_epochs,
                patience=args.patience, mc_samples=100, val_mc_samples=t_val, batch_size=32, device="cpu",
                progress=lambda event: None)
            for r in results["results"]:
                rows.append({"val_passes": t_val, "seed": seed, "modality": r["modality"],
                             "best_epoch": r["best_epoch"], "epochs": r["epochs"],
                             "seconds": round(time.perf_counter() - start, 1)})
    reference = {(r["seed"], r["modality"]): r["best_epoch"] for r in rows if r["val_passes"] == 100}
    print(f"{'T_val':>5} {'runs':>4} {'same stop epoch':>15} {'mean |diff|':>11}  best epochs (seed, modality order)")
    summary = []
    for t_val in sorted({r["val_passes"] for r in rows}):
        mine = [r for r in rows if r["val_passes"] == t_val]
        diffs = [abs(r["best_epoch"] - reference[(r["seed"], r["modality"])]) for r in mine]
        same = sum(d == 0 for d in diffs)
        summary.append({"val_passes": t_val, "runs": len(mine), "same_best_epoch": same,
                        "mean_abs_diff": sum(diffs) / len(diffs)})
        print(f"{t_val:>5} {len(mine):>4} {same:>10}/{len(mine):<4} {sum(diffs) / len(diffs):>11.2f}  "
              f"{[r['best_epoch'] for r in mine]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "summary": summary, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
