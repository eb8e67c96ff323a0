"""Metrics of a trained baseline: accuracy, uncertainty, OOD AUROC and calibration.

- accuracy: argmax of the predictive probabilities against the label (faithful MCD/DE:
  argmax of the mean logits, the paper's; fixed MCD/DE: of the sampling-softmax mean, which
  can differ where σ is large; RCML: of α);
- ece, nll, brier (and, downstream, reliability, selective prediction and conformal sets)
  are computed from the predictive distribution `probs`, named by "predictive":
  "sampling-softmax-mean" (fixed MCD/DE: mean over passes or members and noise samples of
  softmax(μ_t + σ_t ⊙ ε_s)), "softmax-of-mean-logits" (faithful MCD/DE, the reference's)
  or "dirichlet-mean" (RCML, α/α₀);
- aleatoric, epistemic: means of the per-example uncertainties (nats for entropies,
  K/α₀ in (0, 1] for RCML's epistemic);
- ood_auroc: AUROC of the epistemic uncertainty, in-distribution test = 0, OOD = 1
  (scikit-learn); 0.5 is chance;
- ece: expected calibration error, 15 equal-width confidence bins, L1 (torchmetrics);
- nll: mean −log p(label), probabilities clamped at 1e-12;
- brier: mean over examples of Σ_k (p_k − y_k)², in [0, 2].
"""

import numpy as np
import torch

from ..classes import NUM_ID_CLASSES


def predict(model, dataset, collator, batch_size: int = 128, device=None, generator=None) -> dict:
    """Per-example arrays of `model` (eval mode, no gradients) over `dataset`.

    Returns {"probs": (N, C) float32 predictive distribution (`LumaModel.predictive`),
    "labels": (N,) int64, "aleatoric", "epistemic": (N,) float32} and "conflict_modality" (N,) str
    ("" where none) when the rows have it. The evaluation noise (dropout masks, ε) comes from
    `generator` (a torch.Generator on the model's device, drawn from batch after batch) if given,
    else from the model's config.eval_seed (the same noise for every batch); either way the
    arrays do not depend on torch's global RNG.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    parts = {"probs": [], "labels": [], "aleatoric": [], "epistemic": [], "conflict_modality": []}
    rows = []

    def flush():
        batch = {k: v.to(device) if k != "labels" else v for k, v in collator(rows).items()}
        labels = batch.pop("labels")
        with torch.no_grad():
            out = model(**batch) if generator is None else model(**batch, generator=generator)
        probs = out.probs if out.get("probs") is not None else torch.softmax(out.logits.float(), -1)
        parts["probs"].append(probs.float())  # kept on the device: one copy to the host at the end
        parts["labels"].append(labels.numpy())
        parts["aleatoric"].append(out.aleatoric.float())
        parts["epistemic"].append(out.epistemic.float())
        if "conflict_modality" in rows[0]:
            parts["conflict_modality"].append(np.array([r["conflict_modality"] or "" for r in rows], dtype=str))
        rows.clear()

    bar = _progress(len(dataset) if hasattr(dataset, "__len__") else None)
    for row in dataset:
        rows.append(row)
        if len(rows) == batch_size:
            bar.update(len(rows))
            flush()
    if rows:
        bar.update(len(rows))
        flush()
    bar.close()
    arrays = {k: torch.cat(v).cpu().numpy() if torch.is_tensor(v[0]) else np.concatenate(v)
              for k, v in parts.items() if v}
    for key in ("probs", "aleatoric", "epistemic"):
        arrays[key] = arrays[key].astype(np.float32)
    arrays["labels"] = arrays["labels"].astype(np.int64)
    return arrays


def _progress(total):
    """A bar with the time left for `predict` (MC dropout's 100 passes over a split take minutes): on
    a terminal only, and off while `transformers`' bars are off (a sweep shows its own bar instead)."""
    from tqdm.auto import tqdm
    from transformers.utils import logging as transformers_logging

    quiet = not transformers_logging.is_progress_bar_enabled()
    return tqdm(total=total, desc="evaluating", unit="example", leave=False, disable=True if quiet else None)


def classification_metrics(probs, labels, aleatoric, epistemic) -> dict:
    """accuracy, aleatoric, epistemic, ece, nll, brier of in-distribution predictions (numpy arrays)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    num_classes = probs.shape[1]
    at_label = probs[np.arange(len(labels)), labels]
    onehot = np.eye(num_classes)[labels]
    ece = multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(labels), num_classes=num_classes,
                                       n_bins=15, norm="l1")
    return {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "aleatoric": float(np.mean(aleatoric)),
        "epistemic": float(np.mean(epistemic)),
        "ece": float(ece),
        "nll": float(-np.log(np.clip(at_label, 1e-12, None)).mean()),
        "brier": float(((probs - onehot) ** 2).sum(1).mean()),
    }


def ood_auroc(epistemic_test, epistemic_ood) -> float:
    """AUROC of the epistemic uncertainty separating OOD (positive) from test examples."""
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([epistemic_test, epistemic_ood])
    targets = np.concatenate([np.zeros(len(epistemic_test)), np.ones(len(epistemic_ood))])
    return float(roc_auc_score(targets, scores))


def compute_metrics(eval_pred) -> dict:
    """For `Trainer(compute_metrics=...)`: the metrics of `classification_metrics`.

    eval_pred.predictions is the model's (logits, aleatoric, epistemic[, probs][, batch_loss])
    (the `LumaOutput` fields that are set, in order); rows whose label is not an
    in-distribution class (OOD ids >= 42) are left out. With batch_loss (faithful MC dropout)
    the result also holds "loss", the plain mean of the per-batch validation losses, which
    the Trainer reports as eval_loss (its own is weighted by batch size).
    """
    logits, aleatoric, epistemic, *rest = eval_pred.predictions
    labels = np.asarray(eval_pred.label_ids)
    keep = labels < NUM_ID_CLASSES
    logits = np.asarray(logits)
    probs = np.asarray(rest[0]) if rest else torch.softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()
    report = classification_metrics(probs[keep], labels[keep], np.asarray(aleatoric)[keep], np.asarray(epistemic)[keep])
    if len(rest) > 1:
        shares = np.asarray(rest[1], dtype=np.float64)
        report["loss"] = float(shares[:, 0].sum() / shares[:, 1].sum())
    return report


def evaluate(model, dataset, ood=None, collator=None, batch_size: int = 128, device=None,
             return_predictions: bool = False) -> dict:
    """The paper's measures of a trained `model` on `dataset` (in-distribution) and `ood`.

    dataset, ood: raw or featurised LUMA splits (Dataset or IterableDataset); collator:
    default `LumaCollator(mode=model.config.mode, modalities=model.config.modalities)`
    (which needs bert-base-uncased for text: pass your own otherwise). Returns accuracy,
    aleatoric, epistemic, ece, nll, brier and, with `ood`, ood_auroc; with
    `return_predictions`, also {"predictions": {"test": arrays, "ood": arrays}} (see `predict`).
    """
    from .collator import LumaCollator

    if collator is None:
        collator = LumaCollator(mode=model.config.mode, modalities=model.config.modalities)
    test = predict(model, dataset, collator, batch_size, device)
    report = classification_metrics(test["probs"], test["labels"], test["aleatoric"], test["epistemic"])
    predictions = {"test": test}
    if ood is not None:
        predictions["ood"] = predict(model, ood, collator, batch_size, device)
        report["ood_auroc"] = ood_auroc(test["epistemic"], predictions["ood"]["epistemic"])
    if return_predictions:
        report["predictions"] = predictions
    return report
