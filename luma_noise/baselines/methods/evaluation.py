"""One evaluation path for method models: per-example predictions, then every measure from them.

`predict` runs a model over a dataset and returns per-example arrays; `measures` computes
every number from such arrays (what the `train` command writes in results.json, what the
Trainer's `compute_metrics` returns, what the report derives from predictions files), so a
method that gives only probabilities still gets accuracy, NLL, ECE, Brier, AURC, conformal
sets and OOD measures from its predictive entropy ("total") and maximum probability ("msp").

Arrays of one split: probs (N, C) float32, labels (N,) int64 and, when the method has them,
aleatoric, epistemic (N,), and score_<name> (N,) for each of the method's own OOD scores (higher
= more OOD); conflict_modality (N,) str when the rows carry it. The total uncertainty H(p) and
the score msp = −max p are not stored: every measure derives them from probs in float64
(`_scores`), the same way for every method and every predictions file.
"""

import numpy as np
import torch

from ..conformal import CONFIDENCE, coverage_and_size
from ..scoring import classification_metrics, risk_coverage
from .ood import ood_measures

UNCERTAINTIES = ("total", "aleatoric", "epistemic")
DERIVED = ("total", "msp")  # scores every measure derives from probs (module doc)


def _arrays_of(output, score_names) -> dict:
    """Per-example arrays of one MethodOutput (NaN columns dropped), left on the device."""
    out = {"probs": output.probs.float()}
    for kind in ("aleatoric", "epistemic"):
        values = getattr(output, kind).float()
        if not torch.isnan(values).all():
            out[kind] = values
    for i, name in enumerate(score_names):
        if name not in DERIVED:
            out[f"score_{name}"] = output.scores[:, i].float()
    return out


def predict(model, dataset, collator, batch_size: int = 128, device=None, generator=None) -> dict:
    """Per-example arrays (module doc) of a MethodModel (eval mode, no gradients) over `dataset`.

    The evaluation noise of a stochastic method (MC dropout's masks, the sampling softmax's ε)
    comes from `generator` (a torch.Generator on the model's device, drawn from batch after
    batch) if given, else from the model's config.eval_seed (the same noise for every batch);
    either way the arrays do not depend on torch's global RNG.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    names, parts, rows = model.method.score_names(), [], []
    noise = {} if generator is None else {"generator": generator}

    def flush():
        batch = {k: v.to(device) for k, v in collator(rows).items() if k not in ("labels", "example_index")}
        with torch.no_grad():
            part = _arrays_of(model(**batch, **noise), names)  # kept on the device: one copy at the end
        part["labels"] = np.array([int(r["label"]) for r in rows], dtype=np.int64)
        if "conflict_modality" in rows[0]:
            part["conflict_modality"] = np.array([r["conflict_modality"] or "" for r in rows], dtype=str)
        parts.append(part)
        bar.update(len(rows))
        rows.clear()

    bar = _progress(len(dataset) if hasattr(dataset, "__len__") else None)
    for row in dataset:
        rows.append(row)
        if len(rows) == batch_size:
            flush()
    if rows:
        flush()
    bar.close()
    arrays = {k: torch.cat([p[k] for p in parts]).cpu().numpy() if torch.is_tensor(parts[0][k])
              else np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def _progress(total):
    """A bar with the time left (MC dropout's 100 passes over a split take minutes): on a terminal
    only, and off while `transformers`' bars are off (a sweep shows its own bar instead)."""
    from tqdm.auto import tqdm
    from transformers.utils import logging as transformers_logging

    quiet = not transformers_logging.is_progress_bar_enabled()
    return tqdm(total=total, desc="evaluating", unit="example", leave=False, disable=True if quiet else None)


def _scores(arrays: dict) -> dict:
    """{name: OOD score (N,)}: total = H(p) and msp = −max p from probs (float64), epistemic and
    the method's own scores from the arrays."""
    probs = np.asarray(arrays["probs"], np.float64)
    scores = {"total": -(probs * np.log(np.clip(probs, 1e-30, None))).sum(1), "msp": -probs.max(1)}
    if "epistemic" in arrays:
        scores["epistemic"] = arrays["epistemic"]
    scores.update({k[len("score_"):]: v for k, v in arrays.items()
                   if k.startswith("score_") and k[len("score_"):] not in DERIVED})
    return scores


def measures(test: dict, ood: dict = None, validation: dict = None) -> dict:
    """Every measure of one model from per-example arrays (module doc) of its splits.

    test (in-distribution): accuracy, nll, ece, brier (as the baselines, `metrics`), the mean of
    each uncertainty (None when the method has none), aurc_<uncertainty>; with `validation`:
    conformal_coverage and conformal_set_size (90 % target, split conformal); with `ood`:
    ood_<score>_<auroc|aupr_in|aupr_out|fpr95> for every score, and ood_auroc, the AUROC of the
    epistemic uncertainty where the method has one, else of the total uncertainty.
    """
    probs, labels = test["probs"], test["labels"]
    zero = np.zeros(len(labels))
    row = classification_metrics(probs, labels, zero, zero)
    scores = _scores(test)
    correct = np.asarray(probs).argmax(1) == labels
    for kind in UNCERTAINTIES:
        values = scores["total"] if kind == "total" else test.get(kind)
        row[kind] = None if values is None else float(np.mean(values))
        if values is not None:
            row[f"aurc_{kind}"] = float(risk_coverage(values, correct)[1].mean())
    if validation is not None:
        coverage, size = coverage_and_size(validation["probs"], validation["labels"], probs, labels,
                                                    CONFIDENCE)
        row["conformal_coverage"], row["conformal_set_size"] = coverage, size
    if ood is not None:
        row.update(ood_table(scores, _scores(ood)))
        row["ood_auroc"] = row["ood_epistemic_auroc" if "epistemic" in scores else "ood_total_auroc"]
    return row


def ood_table(test_scores: dict, ood_scores: dict) -> dict:
    """ood_<score>_<measure> for every score both splits have."""
    return {f"ood_{name}_{measure}": value for name in test_scores if name in ood_scores
            for measure, value in ood_measures(test_scores[name], ood_scores[name]).items()}


def from_predictions(pred: dict) -> dict:
    """OOD measures of every score, and aurc_total, from one predictions file's arrays
    (`<split>_<key>`, as `train` writes them, the paper's baselines included)."""
    splits = {s: {k[len(s) + 1:]: v for k, v in pred.items() if k.startswith(s + "_")} for s in ("test", "ood")}
    if "probs" not in splits["test"]:
        return {}
    test = _scores(splits["test"])
    correct = splits["test"]["probs"].argmax(1) == splits["test"]["labels"]
    out = {"aurc_total": float(risk_coverage(test["total"], correct)[1].mean())}
    if "probs" in splits["ood"]:
        out.update(ood_table(test, _scores(splits["ood"])))
    return out


def arrays_from_trainer(predictions, label_ids, score_names) -> tuple:
    """(per-example arrays of the in-distribution rows (labels < C), batch_loss or None) of the
    Trainer's `EvalPrediction` of a MethodModel: its outputs (logits, total, aleatoric,
    epistemic, scores, probs[, batch_loss]) concatenated over the batches."""
    _, _, aleatoric, epistemic, scores, probs, *rest = (np.asarray(x) for x in predictions)
    labels = np.asarray(label_ids)
    keep = labels < probs.shape[1]
    arrays = {"probs": probs[keep].astype(np.float64), "labels": labels[keep]}
    for kind, values in (("aleatoric", aleatoric), ("epistemic", epistemic)):
        if not np.isnan(values).all():
            arrays[kind] = values[keep]
    arrays.update({f"score_{n}": scores[keep, i] for i, n in enumerate(score_names) if n not in DERIVED})
    return arrays, (rest[0] if rest else None)


def compute_metrics_for(model):
    """`Trainer(compute_metrics=...)` for a MethodModel: `measures` of the evaluated rows
    (labels >= num_classes, OOD rows, are left out). With a batch_loss (faithful MC dropout)
    the result also holds "loss", the plain mean of the per-batch validation losses, which the
    Trainer reports as eval_loss in place of its own batch-size-weighted mean."""
    names = model.method.score_names()

    def compute_metrics(eval_pred) -> dict:
        arrays, batch_loss = arrays_from_trainer(eval_pred.predictions, eval_pred.label_ids, names)
        report = {k: v for k, v in measures(arrays).items() if v is not None}
        if batch_loss is not None:
            shares = np.asarray(batch_loss, dtype=np.float64)
            report["loss"] = float(shares[:, 0].sum() / shares[:, 1].sum())
        return report

    return compute_metrics
