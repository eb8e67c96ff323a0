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

from .scoring import classification_metrics, ood_auroc  # noqa: F401 (re-exported)


def predict(model, dataset, collator, batch_size: int = 128, device=None, generator=None) -> dict:
    """Per-example arrays of `model` (eval mode, no gradients) over `dataset`: the paper's keys of
    `methods.predict` (the one evaluation path).

    Returns {"probs": (N, C) float32 predictive distribution (`MethodModel.predictive`),
    "labels": (N,) int64, "aleatoric", "epistemic": (N,) float32 (NaN for a method without
    them)} and "conflict_modality" (N,) str ("" where none) when the rows have it. The evaluation
    noise (dropout masks, ε) comes from `generator` if given, else from the model's
    config.eval_seed (see `methods.predict`).
    """
    from .methods.evaluation import predict as predict_arrays

    arrays = predict_arrays(model, dataset, collator, batch_size, device, generator)
    nan = np.full(len(arrays["labels"]), np.nan, dtype=np.float32)
    return {"probs": arrays["probs"], "labels": arrays["labels"], "aleatoric": arrays.get("aleatoric", nan),
            "epistemic": arrays.get("epistemic", nan),
            **({"conflict_modality": arrays["conflict_modality"]} if "conflict_modality" in arrays else {})}


def compute_metrics(eval_pred) -> dict:
    """For `Trainer(compute_metrics=...)`: the metrics of `classification_metrics`.

    eval_pred.predictions are a MethodModel's outputs (`methods.evaluation.arrays_from_trainer`);
    rows whose label is not an in-distribution class (OOD ids >= 42) are left out. With
    batch_loss (faithful MC dropout) the result also holds "loss", the plain mean of the
    per-batch validation losses, which the Trainer reports as eval_loss (its own is weighted by
    batch size). `methods.compute_metrics_for(model)` gives every measure instead.
    """
    from .methods.evaluation import arrays_from_trainer

    arrays, batch_loss = arrays_from_trainer(eval_pred.predictions, eval_pred.label_ids, ())
    nan = np.full(len(arrays["labels"]), np.nan)
    report = classification_metrics(arrays["probs"], arrays["labels"], arrays.get("aleatoric", nan),
                                    arrays.get("epistemic", nan))
    if batch_loss is not None:
        shares = np.asarray(batch_loss, dtype=np.float64)
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
