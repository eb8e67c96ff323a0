"""One evaluation path for method models: per-example predictions, then every measure from them.

`predict` runs a model over a dataset and returns per-example arrays; `measures` computes
every number from such arrays (what the `train` command writes in results.json, what the
Trainer's `compute_metrics` returns, what the report derives from predictions files), so a
method that gives only probabilities still gets accuracy, NLL, ECE, Brier, AURC, conformal
sets and OOD measures from its predictive entropy ("total") and maximum probability ("msp").

Arrays of one split: probs (N, C) float32, labels (N,) int64, total (N,) and, when the method
has them, aleatoric, epistemic (N,), and score_<name> (N,) for each OOD score (higher = more
OOD); conflict_modality (N,) str when the rows carry it.
"""

import numpy as np
import torch

from .. import analysis
from ..metrics import classification_metrics
from .ood import ood_measures

UNCERTAINTIES = ("total", "aleatoric", "epistemic")


def _arrays_of(output, score_names) -> dict:
    """Per-example numpy arrays of one MethodOutput (NaN columns dropped)."""
    out = {"probs": output.logits.float().exp().cpu().numpy(), "total": output.total.float().cpu().numpy()}
    for kind in ("aleatoric", "epistemic"):
        values = getattr(output, kind).float().cpu().numpy()
        if not np.isnan(values).all():
            out[kind] = values
    for i, name in enumerate(score_names):
        out[f"score_{name}"] = output.scores[:, i].float().cpu().numpy()
    return out


def predict(model, dataset, collator, batch_size: int = 128, device=None) -> dict:
    """Per-example arrays (module doc) of a MethodModel (eval mode, no gradients) over `dataset`."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    names, parts, rows = model.method.score_names(), [], []

    def flush():
        batch = {k: v.to(device) for k, v in collator(rows).items() if k not in ("labels", "example_index")}
        with torch.no_grad():
            part = _arrays_of(model(**batch), names)
        part["labels"] = np.array([int(r["label"]) for r in rows], dtype=np.int64)
        if "conflict_modality" in rows[0]:
            part["conflict_modality"] = np.array([r["conflict_modality"] or "" for r in rows], dtype=str)
        parts.append(part)
        rows.clear()

    for row in dataset:
        rows.append(row)
        if len(rows) == batch_size:
            flush()
    if rows:
        flush()
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def _scores(arrays: dict) -> dict:
    """{name: OOD score (N,)}: the method's scores, plus total, msp and epistemic from the arrays."""
    probs = np.asarray(arrays["probs"], np.float64)
    scores = {"total": arrays.get("total", -(probs * np.log(np.clip(probs, 1e-30, None))).sum(1)),
              "msp": -probs.max(1)}
    if "epistemic" in arrays:
        scores["epistemic"] = arrays["epistemic"]
    scores.update({k[len("score_"):]: v for k, v in arrays.items() if k.startswith("score_")})
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
        values = test.get(kind, scores.get(kind))
        row[kind] = None if values is None else float(np.mean(values))
        if values is not None:
            row[f"aurc_{kind}"] = float(analysis.risk_coverage(values, correct)[1].mean())
    if validation is not None:
        coverage, size = analysis.coverage_and_size(validation["probs"], validation["labels"], probs, labels,
                                                    analysis.CONFIDENCE)
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
    out = {"aurc_total": float(analysis.risk_coverage(test["total"], correct)[1].mean())}
    if "probs" in splits["ood"]:
        out.update(ood_table(test, _scores(splits["ood"])))
    return out


def compute_metrics_for(model):
    """`Trainer(compute_metrics=...)` for a MethodModel: `measures` of the evaluated rows
    (labels >= num_classes, OOD rows, are left out)."""
    names = model.method.score_names()

    def compute_metrics(eval_pred) -> dict:
        logits, total, aleatoric, epistemic, scores = (np.asarray(x) for x in eval_pred.predictions)
        labels = np.asarray(eval_pred.label_ids)
        keep = labels < logits.shape[1]
        arrays = {"probs": np.exp(logits[keep].astype(np.float64)), "labels": labels[keep], "total": total[keep]}
        for kind, values in (("aleatoric", aleatoric), ("epistemic", epistemic)):
            if not np.isnan(values).all():
                arrays[kind] = values[keep]
        arrays.update({f"score_{n}": scores[keep, i] for i, n in enumerate(names)})
        return {k: v for k, v in measures(arrays).items() if v is not None}

    return compute_metrics
