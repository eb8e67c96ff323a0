"""The baselines on a GPU, checked and measured in one command (under 10 minutes on any CUDA machine).

    python benchmarks/gpu_check.py [--json gpu_check.json]     # on a machine with CUDA
    python benchmarks/gpu_check.py --device cpu --quick        # a dry run of every section (< 1 min)

1. agreement: the fixture mirror (luma_noise.fixtures) and tiny models; every method trained for
   --epochs epochs on the device and on the CPU with the same seeds; accuracy and NLL must agree
   within TOLERANCE (GPU kernels sum in another order, and a few epochs of Adam amplify it; a
   wiring fault, e.g. a tensor left on the wrong device or a wrong dtype, is far outside it).
2. throughput: training examples/s at batch 128 on random inputs of the real shapes, for the
   paper's nine runs and every other registered method (fused; EDL on image): float32 and bf16
   autocast, each with the convolutions contiguous and channels_last (`train --memory-format`;
   channels_last is its default, measured faster on CPU only).
3. protocol: one epoch of the nine models on random data of the real shapes (TRAIN_ROWS training
   rows; --quick: ROWS_QUICK rows, extrapolated), MC dropout's T = 100 evaluation over the test
   split, and the vectorised passes against a loop of T forward passes (ratio). --quick: two
   models (MCD image and text), T = 10 passes scaled to 100, one throughput step of three runs.
4. One table on stdout, and the same rows as JSON (--json).

Without a CUDA device (and --device cuda, the default) it says so and exits 0 having done nothing.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_baselines import RUNS, batch_of, modalities, plain_loop  # noqa: E402

TOLERANCE = {"accuracy": 0.10, "nll": 0.10}  # absolute accuracy; NLL relative
TRAIN_ROWS, TEST_ROWS, ROWS_QUICK = 16_800, 4_200, 256
PRECISIONS = ("fp32", "fp32+channels_last", "bf16", "bf16+channels_last")


def agreement(device, epochs, quick, work: Path) -> list:
    """Section 1: [{section, run, device value, cpu value, ok}] per method and modality."""
    from luma_noise.baselines.train import run_training
    from luma_noise.fixtures.mirror import write_mirror
    from luma_noise.fixtures.models import save_tiny_models

    write_mirror(work / "mirror")
    text_model = save_tiny_models(work / "models")["text"]
    methods = ("mcd", "rcml") if quick else ("all",)
    mods = ("image+text",) if quick else ("image", "audio", "text", "multimodal")
    results = {}
    for where in (device, "cpu"):
        results[where] = run_training(
            "clean", work / f"runs-{where}", mirror=str(work / "mirror"), cache_dir=str(work / "cache"),
            methods=methods, modalities=mods, text_model=text_model, max_epochs=epochs, ensemble_size=2,
            mc_samples=5, batch_size=32, device=where, progress=lambda event: None)["results"]
    rows = []
    for on_device, on_cpu in zip(results[device], results["cpu"]):
        acc = abs(on_device["accuracy"] - on_cpu["accuracy"])
        nll = abs(on_device["nll"] - on_cpu["nll"]) / max(abs(on_cpu["nll"]), 1e-9)
        rows.append({"section": "agreement", "run": f"{on_device['method']}-{on_device['modality']}",
                     "value": f"acc {on_device['accuracy']:.3f} vs {on_cpu['accuracy']:.3f}, "
                              f"nll {on_device['nll']:.3f} vs {on_cpu['nll']:.3f}",
                     "ok": acc <= TOLERANCE["accuracy"] and nll <= TOLERANCE["nll"]})
    return rows


def _steps_per_second(model, batch, labels, precision, steps) -> float:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        optimiser.zero_grad()
        with torch.autocast(batch[next(iter(batch))].device.type, torch.bfloat16, enabled=precision != "fp32"):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        optimiser.step()

    step()
    _sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync()
    return steps / (time.perf_counter() - start)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def throughput_runs(quick) -> list:
    """(method, modality) of section 2: the paper's nine runs, then every other registered method on
    the three fused (or on image if it takes one modality); quick: MCD image and text, QMF image+text."""
    from luma_noise.baselines.methods import registry

    if quick:
        return [("mcd", "image"), ("mcd", "text"), ("qmf", "image+text")]
    fused = modalities("multimodal")
    return RUNS + [(name, "multimodal" if registry.accepts(name, fused) else "image")
                   for name in registry.BUILTIN if name not in registry.PAPER]


def throughput(device, quick) -> list:
    """Section 2: examples/s at batch 128 per (method, modality) and precision."""
    from luma_noise.baselines import MethodModel, MethodConfig

    rows, batch_size = [], 128
    for method, run_modality in throughput_runs(quick):
        for precision in PRECISIONS:
            torch.manual_seed(0)
            mods = modalities(run_modality)
            model = MethodModel(MethodConfig(method=method, modalities=mods, ensemble_size=2 if quick else 10,
                                             num_train_examples=TRAIN_ROWS))
            layout = "channels_last" if precision.endswith("channels_last") else "contiguous"
            model.to(device).use_memory_format(layout).train()  # as train's fit: the weights; outputs follow
            batch = {k: v.to(device) for k, v in batch_of(mods, batch_size).items()}
            if model.method.needs_index:  # QMF's history of per-example losses
                batch["example_index"] = torch.randint(0, TRAIN_ROWS, (batch_size,), device=device)
            labels = torch.randint(0, 42, (batch_size,), device=device)
            rate = batch_size * _steps_per_second(model, batch, labels, precision, 1 if quick else 5)
            rows.append({"section": "throughput", "run": f"{method}-{run_modality} {precision}",
                         "value": f"{rate:,.0f} examples/s", "examples_per_second": rate, "ok": rate > 0})
    return rows


def protocol(device, quick) -> list:
    """Section 3: one epoch of the nine models (training steps only), T = 100 MC dropout over the
    test split, and the vectorised passes against the loop."""
    from luma_noise.baselines import MethodModel, MethodConfig
    from luma_noise.baselines.settings import RunSettings

    rows, batch_size = [], 128
    train_rows, test_rows = (ROWS_QUICK, ROWS_QUICK // 2) if quick else (TRAIN_ROWS, TEST_ROWS)
    passes = 10 if quick else 100  # quick: T = 10, scaled to 100
    epoch = 0.0
    for method, run_modality in RUNS:
        if quick and (method == "de" or run_modality not in ("image", "text")):
            continue
        mods = modalities(run_modality)
        model = MethodModel(MethodConfig(method=method, modalities=mods, ensemble_size=2 if quick else 10))
        model.to(device).use_memory_format(RunSettings.memory_format).train()  # train's default layout
        batch = {k: v.to(device) for k, v in batch_of(mods, batch_size).items()}
        labels = torch.randint(0, 42, (batch_size,), device=device)
        epoch += train_rows / batch_size / _steps_per_second(model, batch, labels, "fp32", 1 if quick else 3)
    scale = TRAIN_ROWS / train_rows
    rows.append({"section": "protocol", "run": "one epoch, nine models" + (" (quick: 2)" if quick else ""),
                 "value": f"{epoch * scale:,.0f} s of training steps per epoch of {TRAIN_ROWS:,}", "ok": epoch > 0})
    for run_modality in ("image", "text") if quick else ("image", "audio", "text", "multimodal"):
        mods = modalities(run_modality)
        model = MethodModel(MethodConfig(method="mcd", modalities=mods, mc_samples=passes)).to(device)
        model.use_memory_format(RunSettings.memory_format).eval()
        batch = {k: v.to(device) for k, v in batch_of(mods, min(batch_size, test_rows)).items()}
        with torch.no_grad():
            vectorised = _seconds(lambda: model(**batch))
            loop = _seconds(lambda: plain_loop(model, batch, passes))
        per_split = vectorised * TEST_ROWS / len(next(iter(batch.values()))) * 100 / passes
        rows.append({"section": "protocol", "run": f"mcd-{run_modality} T=100 evaluation",
                     "value": f"{per_split:,.1f} s per test split; loop/vectorised (T={passes}) "
                              f"{loop / vectorised:.2f}x", "loop_over_vectorised": loop / vectorised, "ok": True})
    return rows


def _seconds(fn) -> float:
    fn()
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="fewer methods, rows and steps: a dry run")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of the agreement check")
    parser.add_argument("--json", default="gpu_check.json", help="where the table goes as JSON")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no GPU: torch {torch.__version__} sees no CUDA device (built for CUDA "
              f"{torch.version.cuda or 'none'}); nothing was run. On a CPU: --device cpu --quick")
        return 0
    start = time.perf_counter()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        rows = agreement(args.device, 1 if args.quick else args.epochs, args.quick, Path(work))
    rows += throughput(args.device, args.quick) + protocol(args.device, args.quick)
    print(f"gpu_check on {name} (torch {torch.__version__}), {time.perf_counter() - start:.0f} s")
    print(f"{'section':<11} {'run':<42} {'ok':<3} value")
    for row in rows:
        print(f"{row['section']:<11} {row['run']:<42} {'yes' if row['ok'] else 'NO':<3} {row['value']}")
    Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "quick": args.quick,
                                           "tolerance": TOLERANCE, "rows": rows}, indent=1))
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
