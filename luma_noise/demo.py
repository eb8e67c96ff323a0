"""`luma demo`: LUMA's whole pipeline offline, on synthetic data, in a few minutes on a laptop CPU.

    luma demo [--output-dir luma-demo] [--epochs 3]

Steps, each saying what it did, what a real run does differently and the command for it:
1. a miniature upstream mirror in LUMA's exact formats (`fixtures.mirror`, synthetic content);
2. tiny random image, audio and text checkpoints (`fixtures.models`);
3. `clean`, `sample_noise` and `label_noise_0.3` prepared from the mirror through the builder
   (`variant.prepare`, what `luma prepare` runs), each with its summary;
4. MC dropout and RCML trained on the fused modalities of `clean` and `label_noise_0.3`
   (`baselines.sweep`, what `luma baselines sweep` runs), evaluated on test and ood;
5. the report (`baselines.report`, what `luma baselines report` runs).

Everything goes under the output folder: the mirror, the models, every cache (datasets, deep
features, Hugging Face home, matplotlib, temporary files), the runs and the report. The Hub
is offline while it runs (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, TRANSFORMERS_OFFLINE) and the
environment is restored afterwards. The numbers it reports come from random models on random
data: they show the pipeline works, not how the methods compare.
"""

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("clean", "sample_noise", "label_noise_0.3")  # prepared and summarised
TRAINED = ("clean", "label_noise_0.3")  # trained and reported
METHODS = ("mcd", "rcml")
METHOD_NAMES = {"mcd": "MC dropout", "rcml": "RCML"}
TEXT_NOISES = ["KeyboardNoise", "SpellingNoise", "OCRNoise"]  # the text noises that need no model
SEED = 42
MARKER = "demo.json"  # written first, completed at the end: a folder holding it is a demo's, reusable
# Train options: tiny, so that training and evaluation take seconds (the real ones: train.RUN_DEFAULTS).
TRAIN = {"methods": METHODS, "modalities": ("multimodal",), "ensemble_size": 2, "mc_samples": 5,
         "batch_size": 32, "device": "cpu"}


def add_parser(subparsers):
    """Register `demo` on the `luma` command's subparsers."""
    parser = subparsers.add_parser("demo", help="the whole pipeline offline on synthetic data, in a few minutes",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="luma-demo",
                        help="folder for everything the demo writes (new, empty, or an earlier demo's); default luma-demo")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model (default 3)")
    return parser


def run(args) -> int:
    """Entry point of `luma demo`: 0 when every step finished, 2 for a bad option or folder."""
    out = Path(args.output_dir).resolve()
    problem = _check(out, args.epochs)
    if problem:
        print(f"luma demo: error: {problem}", file=sys.stderr)
        return 2
    run_demo(out, epochs=args.epochs)
    return 0


def _check(out: Path, epochs: int):
    """What is wrong with the options, or None."""
    if epochs < 1:
        return f"--epochs={epochs}: expected an integer >= 1"
    if out.exists() and not out.is_dir():
        return f"--output-dir {out} is a file; expected a new or empty folder, or an earlier demo's"
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        return (f"--output-dir {out} is not empty and holds no earlier demo ({MARKER}); "
                "name a new or empty folder so that nothing of yours is overwritten")
    if (out / MARKER).is_file() and json.loads((out / MARKER).read_text())["epochs"] != epochs:
        before = json.loads((out / MARKER).read_text())["epochs"]
        return f"--output-dir {out} holds a demo run with --epochs {before}: rerun with --epochs {before} or another folder"
    return None


def run_demo(out, epochs: int = 3, say=print) -> dict:
    """Run every step into folder `out`; returns what was written ({name: path}, and "seconds")."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():  # first: an interrupted demo can be run again into the same folder
        (out / MARKER).write_text(json.dumps({"epochs": epochs, "finished": False}) + "\n", encoding="utf-8")
    start = time.perf_counter()
    with contained(out):
        say(f"LUMA demo: the whole pipeline on synthetic data, offline, everything under {out}\n")
        mirror = _write_mirror(out, say)
        models = _write_models(out, say)
        fields = _feature_fields(models, out)
        summaries = {name: _prepare(name, i + 3, mirror, out, fields, say) for i, name in enumerate(CONFIGS)}
        runs = _train(mirror, models, fields, out, epochs, say)
        report, report_files = _report(runs, out, say)
    written = {"mirror": str(mirror), "models": str(out / "models"), "runs": str(runs),
               "report": str(report / "report.md"), "results_csv": str(report / "results.csv"),
               "report_files": [str(report / name) for name in report_files],
               "results": [str(runs / c / f"seed-{SEED}" / "results.json") for c in TRAINED],
               "summaries": summaries, "epochs": epochs, "finished": True,
               "seconds": round(time.perf_counter() - start, 1)}
    (out / MARKER).write_text(json.dumps(written, indent=1) + "\n", encoding="utf-8")
    say(_closing(written, out))
    return written


@contextlib.contextmanager
def contained(out: Path):
    """Offline, every cache and temporary file under `out/cache`, for the duration; restored after.

    The variables are read when `datasets`, `huggingface_hub` and `matplotlib` are first imported,
    which `luma demo` does only after this; a caller that already imported them gets their offline
    switches set too.
    """
    cache = out / "cache"
    values = {"HF_HOME": cache / "hf", "HF_DATASETS_CACHE": cache / "datasets", "MPLCONFIGDIR": cache / "matplotlib",
              "XDG_CACHE_HOME": cache, "TMPDIR": cache / "tmp", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
              "TRANSFORMERS_OFFLINE": "1", "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in values}
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, str(cache / "tmp")
    os.environ.update({k: str(v) for k, v in values.items()})
    switches = _offline_switches()
    try:
        yield
    finally:
        for module, name, value in switches:
            setattr(module, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        tempfile.tempdir = saved_tempdir


def _offline_switches() -> list:
    """Turn on the offline flags of `datasets` and `huggingface_hub` if they are already imported;
    returns [(module, attribute, previous value)] to restore."""
    saved = []
    for module_name, names in (("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
                               ("huggingface_hub.constants", ("HF_HUB_OFFLINE",))):
        module = sys.modules.get(module_name)
        for name in names if module is not None else ():
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, True)
    return saved


def _step(say, number: int, title: str, did: str, real: str, command: str) -> None:
    """One step's account: what was done, what a real run does instead, and its command."""
    say(f"[{number}/7] {title}\n  done: {did}\n  a real run: {real}\n  real command: {command}\n")


def _write_mirror(out: Path, say) -> Path:
    from .fixtures.mirror import write_mirror

    start, folder = time.perf_counter(), out / "mirror"
    manifest = write_mirror(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    _step(say, 1, "a miniature LUMA mirror",
          f"wrote {folder} in {time.perf_counter() - start:.1f} s ({size / 1e6:.1f} MB): the CIFAR-10 and CIFAR-100 "
          f"tarballs, EDM images, {len(manifest['audio_labels'])} wavs with their datalist, "
          f"{len(manifest['text_labels'])} texts, the six split lists and ESC-50, in the upstream formats "
          "with synthetic content (3 train and 2 test examples per class)",
          "downloads the pinned upstream files: two CIFAR tarballs (about 170 MB each), LUMA's EDM images, "
          "datalist and texts from the Hugging Face Hub, and one wav per example (29,059 for clean; the Hub's "
          "rate limit makes that about 45 min anonymously), checked and cached once",
          "luma prepare clean   (or --mirror FOLDER for a local copy laid out like this one)")
    return folder


def _write_models(out: Path, say) -> dict:
    from .variants.deep_features import DEFAULT_MODEL_IDS
    from .fixtures.models import save_tiny_models

    start = time.perf_counter()
    models = save_tiny_models(out / "models")
    _step(say, 2, "tiny models",
          f"wrote random tiny ResNet, Wav2Vec 2.0 and BERT checkpoints under {out / 'models'} in "
          f"{time.perf_counter() - start:.1f} s",
          "downloads the real checkpoints once from the Hub (" + ", ".join(DEFAULT_MODEL_IDS.values()) + "): "
          "the deep features of label noise and diversity, and BERT's text embeddings for the baselines",
          "nothing: the configs and `--text-model` default to those checkpoints")
    return models


def _feature_fields(models: dict, out: Path) -> dict:
    """Config fields pointing the deep features at the tiny models, cached under `out`."""
    fields = {f"{modality}_feature_model": path for modality, path in models.items()}
    return {**fields, "feature_cache_dir": str(out / "cache" / "features")}


_REAL_PREPARE = {
    "clean": "the published splits of the real data",
    "sample_noise": "the same rows with every image, clip and text corrupted; text noise also draws "
                    "back-translation and WordNet noises (translation models and WordNet data are downloaded; "
                    f"here only {', '.join(TEXT_NOISES)}, which need none)",
    "label_noise_0.3": "30 % of the labels switched to the nearest other class in the deep features of the real "
                       "checkpoints (the features of about 25,000 examples per modality, computed once and cached)",
}


def _prepare(config: str, number: int, mirror: Path, out: Path, fields: dict, say) -> dict:
    """Build `config` from the mirror as `luma prepare` does and print its summary; returns it."""
    from .variant import Variant, prepare
    from .variant_summary import format_summary, summarize

    own = {"text_noises": TEXT_NOISES} if config == "sample_noise" else {}
    variant = Variant(config, {**fields, **own, "mirror": str(mirror)})
    start = time.perf_counter()
    built = prepare(variant, cache_dir=str(out / "cache" / "datasets"))
    summary = summarize(built, variant.resolved(), fields["feature_cache_dir"])
    rows = ", ".join(f"{split} {n}" for split, n in _real_rows(config).items())
    sets = " --set text_noises='" + json.dumps(TEXT_NOISES) + "'" if own else ""
    _step(say, number, f"prepared {config}",
          f"built through the builder in {time.perf_counter() - start:.1f} s; its summary:\n    "
          + format_summary(summary).replace("\n", "\n    "),
          f"{_REAL_PREPARE[config]}; {rows} rows", f"luma prepare {config}{sets}")
    return summary


def _real_rows(config: str) -> dict:
    """{split: rows} of `config` on the real data, as recorded in the package's dataset_infos.json."""
    from .card import PACKAGE_INFOS

    splits = json.loads(PACKAGE_INFOS.read_text(encoding="utf-8"))[config]["splits"]
    return {split: f"{info['num_examples']:,}" for split, info in splits.items()}


def _train(mirror: Path, models: dict, fields: dict, out: Path, epochs: int, say) -> Path:
    from .baselines.sweep import run_sweep

    runs, start = out / "runs", time.perf_counter()
    say(f"[6/7] training {' and '.join(METHOD_NAMES.values())} on {' and '.join(TRAINED)} "
        f"({epochs} epoch(s) each; the bar shows the time left)")
    summary = run_sweep(runs, TRAINED, [SEED], fields, mirror=str(mirror), cache_dir=str(out / "cache" / "datasets"),
                        text_model=models["text"], max_epochs=epochs, **TRAIN)
    _step(say, 6, "trained and evaluated",
          f"{summary['runs']} runs ({summary['trained']} trained now, {summary['skipped']} found finished) in "
          f"{time.perf_counter() - start:.1f} s: each method on the fused image, audio and text inputs, "
          "evaluated on test and ood; results in runs/<config>/seed-42/results.json",
          "every config (9) and 3 seeds, MC dropout, deep ensembles and RCML on each modality and the fusion, "
          "up to 300 epochs with early stopping, 10 ensemble members and 100 dropout passes: days on a CPU, "
          "hours on a GPU (docs: the benchmark's cost)",
          "luma baselines sweep --output-dir runs/")
    return runs


def _report(runs: Path, out: Path, say) -> tuple:
    """Write the report from the runs; returns (its folder, the names of the files written)."""
    from .baselines.report import write_report

    start, folder = time.perf_counter(), out / "report"
    written = write_report([runs], folder)
    _step(say, 7, "the report",
          f"wrote {len(written['files'])} files under {folder} in {time.perf_counter() - start:.1f} s: "
          f"{', '.join(written['files'])}",
          "the same tables (the paper's Tables 1-3 beside its published numbers, calibration, conformal sets) "
          "over every variant and seed, with mean and spread over the seeds",
          "luma baselines report runs/ --output-dir report/")
    return folder, written["files"]


def _closing(written: dict, out: Path) -> str:
    """The closing summary: where the report is, and the trained models' main numbers."""
    lines = [f"Done in {written['seconds']:.0f} s. The report: {written['report']}",
             f"(tables in {written['results_csv']}; the runs in {written['runs']}; everything the demo wrote is "
             f"under {out})", "", f"{'config':<16} {'method':<11} {'accuracy':>8} {'aleatoric':>9} "
             f"{'epistemic':>9} {'ood AUROC':>9}"]
    for path in written["results"]:
        data = json.loads(Path(path).read_text())
        for r in data["results"]:
            lines.append(f"{data['config']:<16} {METHOD_NAMES.get(r['method'], r['method']):<11} "
                         f"{r['accuracy']:8.3f} {r['aleatoric']:9.3f} {r['epistemic']:9.3f} {r['ood_auroc']:9.3f}")
    lines += ["", "Random models on random data, 3 training examples per class: chance accuracy is 1/42 = 0.024, "
              "and these numbers say nothing about the methods. They show that every step runs; the real "
              "commands above run the benchmark itself. To build your own toy variants from this mirror: "
              f"luma prepare CONFIG --mirror {written['mirror']} (docs/demo.md)."]
    return "\n".join(lines)
