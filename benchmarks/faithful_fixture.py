"""Both modes on the fixture mirror with tiny models, and what each faithful deviation changes.

    HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 python benchmarks/faithful_fixture.py [WORKDIR]

Builds the miniature mirror (luma_noise/fixtures/mirror.py) and a tiny random BERT, trains MCD, DE
(image, text, multimodal) and RCML (multimodal) in `fixed` and in `faithful` mode with
`run_training` (3 epochs at most, 3 members, 10 passes, batch 64), prints each run's metrics,
then re-evaluates the trained models' test passes under each deviation alone, so that the
effect of one defect is seen with everything else equal. Numbers go to docs/faithful.md.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from luma_noise.baselines import metrics, uncertainty  # noqa: E402
from luma_noise.baselines.methods import MethodModel  # noqa: E402
from luma_noise.baselines.train import run_training  # noqa: E402

SETTINGS = dict(methods=("mcd", "de", "rcml"), modalities=("image", "text", "multimodal"), max_epochs=3,
                ensemble_size=3, mc_samples=10, batch_size=64, device="cpu", seeds=(42,))


def _passes(model, batch):
    with torch.no_grad():
        return model.method.passes(model, {k: v for k, v in batch.items() if k != "labels"},
                                   torch.Generator().manual_seed(0))


def _variants(mu, sigma, ensemble, generator):
    """Mean (aleatoric, epistemic) of faithful evaluation with one deviation at a time."""
    entropy, sampler = uncertainty._reference_entropy, uncertainty._reference_sampled_probs
    mean, log_ale, std1 = uncertainty.vtm_sigmas(mu, sigma, correction=1)
    std0 = uncertainty.vtm_sigmas(mu, sigma)[2]
    if ensemble:
        log_ale = uncertainty.reference_ensemble_log_sigma(mu)
    out = {}

    def both(ale_sigma, epi_sigma, draw=sampler):
        reps = [(entropy(draw(mean, ale_sigma, 100, generator)).mean().item(),
                 entropy(draw(mean, epi_sigma, 100, generator)).mean().item()) for _ in range(50)]
        return tuple(np.mean(reps, axis=0).round(4).tolist())

    out["faithful"] = both(log_ale.exp(), std1)
    # the previous sampler: one ε (S, 1, C) for the batch, softmax over axis 1 of (S, B, C), the batch
    out["noise shared by the batch"] = both(log_ale.exp(), std1, lambda m, s, n, g: uncertainty._sampled_probs(
        m, s, n, 1, g))
    out["population std"] = both(log_ale.exp(), std0)
    if ensemble:
        out["σ from member 2"] = both(mu[min(2, len(mu) - 1)].mean(0, keepdim=True).expand_as(mean).exp(), std1)
    else:
        out["σ not exponentiated"] = both(log_ale, std1)
    fixed = uncertainty.disentangle(mu, sigma, 100, generator=generator)
    out["fixed (all corrected)"] = (round(fixed[1].mean().item(), 4), round(fixed[2].mean().item(), 4))
    return out


def _predictive(model, batch, labels):
    """NLL and ECE of softmax(μ̄) against the sampling-softmax mean, on the same passes."""
    mu, sigma = _passes(model, batch)
    out = {}
    for name, probs in (("softmax-of-mean-logits", torch.softmax(mu.mean(0), -1)),
                        ("sampling-softmax-mean", uncertainty.predictive_probs(mu, sigma, 100,
                                                                               torch.Generator().manual_seed(0)))):
        m = metrics.classification_metrics(probs.double().numpy(), labels, np.zeros(len(labels)), np.zeros(len(labels)))
        out[name] = {k: round(m[k], 4) for k in ("accuracy", "nll", "ece", "brier")}
    return out


def main(workdir: Path) -> dict:
    from luma_noise.fixtures.mirror import write_mirror
    from luma_noise.fixtures.models import save_tiny_models

    from luma_noise.baselines.collator import LumaCollator, featurize_dataset

    mirror = workdir / "mirror"
    if not mirror.exists():
        write_mirror(mirror)
    bert = save_tiny_models(workdir / "models")["text"]
    report = {"runs": {}, "deviations": {}, "predictive": {}}
    for mode in ("fixed", "faithful"):
        results = run_training("clean", workdir / f"runs-{mode}", mirror=str(mirror), mode=mode, text_model=bert,
                               cache_dir=str(workdir / "cache"), progress=lambda event: None, **SETTINGS)
        report["runs"][mode] = results
    import luma_noise

    test = luma_noise.load("clean", mirror=str(mirror), cache_dir=str(workdir / "cache"))["test"]
    for mode in ("faithful", "fixed"):
        collator = LumaCollator(text_model=bert, mode=mode)
        rows = featurize_dataset(test, collator)
        batch = collator(list(rows))
        labels = batch["labels"].numpy()
        for name in ("mcd-multimodal-seed42", "de-multimodal-seed42"):
            model = MethodModel.from_pretrained(workdir / f"runs-{mode}" / "models" / name).eval()
            if mode == "faithful":
                mu, sigma = _passes(model, batch)
                report["deviations"][name] = _variants(mu, sigma, name.startswith("de"), torch.Generator().manual_seed(1))
            else:
                report["predictive"][name] = _predictive(model, batch, labels)
    return report


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="luma-faithful-"))
    out = main(folder)
    for mode, results in out["runs"].items():
        print(f"== {mode}: {json.dumps({k: v for k, v in results.items() if k != 'results'})}")
        for r in results["results"]:
            print(f"  {r['method']}-{r['modality']}: " + ", ".join(
                f"{k} {r[k]:.3f}" for k in ("accuracy", "aleatoric", "epistemic", "ood_auroc", "ece", "nll"))
                  + f", epochs {r.get('epochs')}, best {r.get('best_epoch')}, predictive {r.get('predictive')}")
    print(json.dumps({"deviations": out["deviations"], "predictive": out["predictive"]}, indent=1,
                     ensure_ascii=False))
