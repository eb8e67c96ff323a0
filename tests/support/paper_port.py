"""The paper's three methods (MC dropout, deep ensemble, RCML) trained on the fixture mirror with tiny
settings: the runs whose results.json rows and prediction arrays were recorded before the three
became method objects (`tests/data/paper_port/`), and that `test_paper_methods_port.py` reruns.

    python -m tests.support.paper_port record   # rewrites tests/data/paper_port/ (only on purpose)
"""

import json
import sys
from pathlib import Path

import numpy as np

RECORDED = Path(__file__).resolve().parents[1] / "data" / "paper_port"
# contiguous: the convolutions' layout when the records were made (channels_last draws the dropout
# masks of the image branch in another order).
COMMON = dict(max_epochs=2, ensemble_size=2, mc_samples=3, batch_size=64, device="cpu", seeds=(42,),
              memory_format="contiguous")
# name -> run_training keywords: both modes, validation passes below the final ones, an
# independently trained ensemble, bf16 autocast.
GROUPS = {
    "fixed": dict(methods=("mcd", "de", "rcml"), modalities=("text", "image+text"), val_mc_samples=2),
    "faithful": dict(methods=("mcd", "de", "rcml"), modalities=("text", "image+text"), mode="faithful"),
    "independent": dict(methods=("de",), modalities=("text",), ensemble_training="independent"),
    "bf16": dict(methods=("mcd",), modalities=("text",), precision="bf16", val_mc_samples=10),  # the default then
}
# The deep ensemble's members called one by one, as before the port (the exact comparison).
LOOPED = {"method_options": {"de": {"batched": "never"}}}
# Row keys that name files or versions, not numbers.
NOT_COMPARED = ("predictions",)


def run_group(name, mirror, text_model, cache_dir, out, **extra) -> tuple:
    """(results.json rows, {"<run>/<array>": array}) of one group trained into `out` (extra: more
    `run_training` keywords)."""
    from luma_noise.baselines.train import run_training

    results = run_training("clean", out, mirror=str(mirror), text_model=text_model, cache_dir=str(cache_dir),
                           progress=lambda event: None, **{**COMMON, **GROUPS[name], **extra})
    arrays = {}
    for row in results["results"]:
        with np.load(Path(out) / row["predictions"]) as data:
            run = Path(row["predictions"]).stem
            arrays.update({f"{run}/{key}": data[key] for key in data.files})
    rows = [{k: v for k, v in row.items() if k not in NOT_COMPARED} for row in results["results"]]
    return rows, arrays


def record(workdir: Path) -> None:
    from luma_noise.fixtures.mirror import write_mirror
    from luma_noise.fixtures.models import save_tiny_models

    write_mirror(workdir / "mirror")
    bert = save_tiny_models(workdir / "models")["text"]
    RECORDED.mkdir(parents=True, exist_ok=True)
    for name in GROUPS:
        extra = LOOPED if "de" in GROUPS[name]["methods"] else {}
        rows, arrays = run_group(name, workdir / "mirror", bert, workdir / "cache", workdir / name, **extra)
        (RECORDED / f"{name}.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
        np.savez_compressed(RECORDED / f"{name}.npz", **arrays)
        print(name, len(rows), "runs")


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                          HF_HOME=os.path.join(tmp, "hf"))
        record(Path(tmp))
