"""Method objects' fusion rules, losses and read-outs against the official implementations' outputs.

The oracles are `reference_values/methods/*.npz` of the project's shared folder (METHODS.md §9),
read where it sits beside the clone (`../shared`, as on CI) or above it. All checks run in
float64; tolerances are METHODS.md §0's: rtol 1e-9 on fused α and evidence, rtol 1e-5 on losses
(RCML's and DBF's KL take lnΓ(K) from a float32 constant, ≈ 2e-6 apart), 1e-8 on QMF's losses
(the official History casts its targets to float32).
"""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from luma_noise.baselines.methods import evidential, qmf, softmax
from luma_noise.baselines.methods.ood import ood_measures


def _oracle_folder() -> Path:
    here = Path(__file__).resolve().parents[4]
    for parent in (here.parent, *here.parents):
        folder = parent / "shared" / "reference_values" / "methods"
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"no shared/reference_values/methods beside or above {here}")


def oracle(name: str) -> dict:
    with np.load(_oracle_folder() / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def t(array):
    return torch.as_tensor(np.asarray(array), dtype=torch.float64)


def _views(data, count=3):
    return {m: {"evidence": F.softplus(t(data["logits"][i])), "logits": t(data["logits"][i])}
            for i, m in enumerate(("image", "audio", "text")[:count])}


def test_tmc_fusion_and_loss_match_the_official_code():
    data = oracle("tmc")
    evidences = [F.softplus(t(x)) for x in data["logits"]]
    np.testing.assert_allclose(evidential.ds_combine(evidences) + 1, data["alpha_fused"], rtol=1e-9)
    np.testing.assert_allclose(evidential.ds_combine(evidences[:2]) + 1, data["alpha_fused_pair01"], rtol=1e-9)
    for order in itertools.permutations(range(3)):  # commutative and associative
        np.testing.assert_allclose(evidential.ds_combine([evidences[i] for i in order]) + 1, data["alpha_fused"],
                                   rtol=1e-9)
    pairwise = evidential.ds_combine_pair(evidential.ds_combine_pair(evidences[0] + 1, evidences[1] + 1),
                                          evidences[2] + 1)
    np.testing.assert_allclose(pairwise, data["alpha_fused"], rtol=1e-9)
    method, labels = evidential.TMC(), torch.as_tensor(data["labels"])
    for epoch, expected in zip(data["loss_epochs"], data["loss"]):
        loss = method.loss(_views(data), labels, evidential.Step(epoch=float(epoch)))
        assert loss.item() == pytest.approx(expected, rel=1e-5), epoch
    pred = method.predict(_views(data))
    np.testing.assert_allclose(pred.probs, data["prob_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.epistemic, data["vacuity_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.aleatoric, data["expected_entropy_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.total, data["total_entropy_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.scores["mutual_info"], data["mutual_info_fused"], rtol=1e-7, atol=1e-12)


def test_ds_fusion_closed_forms():
    data = oracle("tmc")
    evidence = F.softplus(t(data["logits"][0]))
    vacuous = torch.zeros_like(evidence)
    torch.testing.assert_close(evidential.ds_combine([evidence, vacuous]), evidence, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(evidential.ds_combine_pair(evidence + 1, vacuous + 1), evidence + 1, rtol=1e-12, atol=1e-12)
    k = evidence.shape[-1]  # two identical opinions: e + e + e² / K
    torch.testing.assert_close(evidential.ds_combine([evidence, evidence]), 2 * evidence + evidence ** 2 / k)


def test_etmc_matches_the_official_code_with_three_views_and_the_pseudo_view():
    data = oracle("etmc")
    method, labels = evidential.ETMC(), torch.as_tensor(data["labels"])
    assert method.config.anneal_epochs == 10

    class Pseudo(torch.nn.Module):  # the pseudo head returning the oracle's pseudo logits
        def forward(self, features):
            return t(data["pseudo_logits"])

    extra = torch.nn.ModuleDict({"pseudo": Pseudo()})
    views = {m: {**v, "features": torch.zeros(16, 1, dtype=torch.float64)} for m, v in _views(data).items()}
    np.testing.assert_allclose(method.evidences(views, extra)[3] + 1, data["alpha_pseudo"], rtol=1e-9)
    for epoch, expected in zip(data["loss_epochs"], data["threeview_loss"]):
        loss = method.loss(views, labels, evidential.Step(epoch=float(epoch), extra=extra))
        assert loss.item() == pytest.approx(expected, rel=1e-5), epoch
    pred = method.predict(views, extra)
    np.testing.assert_allclose(pred.probs, data["prob_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.epistemic, data["vacuity_fused"], rtol=1e-9)
    np.testing.assert_allclose(pred.aleatoric, data["expected_entropy_fused"], rtol=1e-9)
    # the two-view official ETMC (depth = view 0, rgb = view 1): fusion and the sum of 4 batch means
    two = [t(data["twoview_alpha_depth"]) - 1, t(data["twoview_alpha_rgb"]) - 1, t(data["twoview_alpha_pseudo"]) - 1]
    np.testing.assert_allclose(evidential.ds_combine(two) + 1, data["twoview_alpha_fused"], rtol=1e-9)
    pair = dict(list(views.items())[:2])
    np.testing.assert_allclose(method.predict(pair, extra).probs, data["twoview_alpha_fused"]
                               / data["twoview_alpha_fused"].sum(-1, keepdims=True), rtol=1e-9)
    for epoch, expected in zip(data["loss_epochs"], data["twoview_loss"]):
        loss = method.loss(pair, labels, evidential.Step(epoch=float(epoch), extra=extra))
        assert loss.item() == pytest.approx(expected, rel=1e-5), epoch


@pytest.mark.parametrize("self_term", [True, False])
def test_dbf_fusion_matches_the_official_code_at_every_lambda(self_term):
    data = oracle("dbf")
    evidences = [t(e) for e in data["evidence_softplus"]]
    key = "fused_evidence" if self_term else "fused_evidence_no_self_term"
    for i, flambda in enumerate(data["lambdas"]):
        fused, discount = evidential.dbf_fuse(evidences, float(flambda), self_term)
        if self_term:
            np.testing.assert_allclose(discount, data["discount"][i], rtol=1e-9, err_msg=f"η at λ={flambda}")
        np.testing.assert_allclose(fused, data[key][i], rtol=1e-9, err_msg=f"λ={flambda}")


def test_dbf_closed_forms_and_loss():
    data = oracle("dbf")
    evidences = [t(e) for e in data["evidence_softplus"]]
    np.testing.assert_allclose(evidential.dbf_fuse([evidences[0]] * 3, 1.0, False)[0], evidences[0], rtol=1e-5)
    np.testing.assert_allclose(evidential.DBF().predict({m: {"evidence": e} for m, e in zip("iat", evidences)}).epistemic,
                               data["u_fused_main"], rtol=1e-9)
    labels = torch.as_tensor(data["labels"])
    views = {m: {"evidence": e} for m, e in zip(("image", "audio", "text"), evidences)}
    for gamma, key in ((1.0, "loss_gamma1"), (0.0, "loss_acc")):
        method = evidential.DBF(gamma=gamma)
        for epoch, expected in zip(data["loss_epochs"], data[key]):
            loss = method.loss(views, labels, evidential.Step(epoch=float(epoch)))
            assert loss.item() == pytest.approx(expected, rel=1e-5), (gamma, epoch)


def test_unimodal_edl_matches_the_official_loss_and_read_outs():
    data = oracle("edl")
    method, labels = evidential.EDL(), torch.as_tensor(data["labels"])
    views = {"image": {"evidence": F.softplus(t(data["logits"]))}}
    for epoch, expected in zip(data["loss_epochs"], data["loss_digamma_float64_tmc"]):
        assert method.loss(views, labels, evidential.Step(epoch=float(epoch))).item() == pytest.approx(expected, rel=1e-9)
    pred = method.predict(views)
    for key, value in (("prob", pred.probs), ("vacuity", pred.epistemic), ("expected_entropy", pred.aleatoric),
                       ("total_entropy", pred.total), ("max_prob", -pred.scores["msp"])):
        np.testing.assert_allclose(value, data[key], rtol=1e-9, err_msg=key)


def test_method_configs_are_validated_when_built():
    with pytest.raises(ValueError, match="flambda.*gamma"):
        evidential.DBF(flambda=0, gamma=-1)
    with pytest.raises(ValueError, match="anneal_epochs"):
        evidential.TMC(anneal_epochs=0)
    with pytest.raises(ValueError, match="unknown hyper-parameters.*'lamda'"):
        evidential.DBF(lamda=1)


@pytest.mark.parametrize("variant, prefix", [("text-image", "ti"), ("rgbd", "rgbd")])
def test_qmf_training_steps_match_the_official_code(variant, prefix):
    data = oracle("qmf")
    history = torch.zeros(2, 32, dtype=torch.float64)
    labels_all = torch.as_tensor(data["train_y_data"])
    for step in range(4):
        index = torch.as_tensor(data["train_idx"][step])
        views = [t(data["train_logits"][step, v]).requires_grad_() for v in range(2)]
        loss = qmf.qmf_loss(views, labels_all[index], history, index, variant)
        loss.backward()
        if not (variant == "rgbd" and step == 0):  # the official loss is NaN there (0/0), see qmf.py
            assert loss.item() == pytest.approx(data[f"{prefix}_loss"][step], rel=1e-8), step
        for v in range(2):
            np.testing.assert_allclose(views[v].grad, data[f"{prefix}_grad"][step, v], rtol=1e-7, atol=1e-12,
                                       err_msg=f"step {step} view {v}")
    for v in range(2):
        np.testing.assert_allclose(history[v], data[f"{prefix}_history_view{v}"], rtol=1e-12)


def test_qmf_fusion_matches_the_official_code():
    data = oracle("qmf")
    logits = [t(z) for z in data["logits"]]
    np.testing.assert_allclose(qmf.qmf_fuse(logits[:2]), data["fused_logits_2view"], rtol=1e-12)
    np.testing.assert_allclose(qmf.qmf_fuse(logits), data["fused_logits_3view_derived"], rtol=1e-12)
    np.testing.assert_allclose(qmf.qmf_weights(logits[:2])[0], data["conf_view0"], rtol=1e-12)
    pred = qmf.QMF().predict({m: {"logits": z} for m, z in zip(("image", "audio", "text"), logits)})
    np.testing.assert_allclose(pred.scores["energy"], -torch.logsumexp(t(data["fused_logits_3view_derived"]), -1),
                               rtol=1e-12)
    assert pred.aleatoric is None and pred.epistemic is None  # total only


def test_temperature_is_the_exact_optimum_and_scores_match():
    data = oracle("softmax")
    temperature = softmax.fit_temperature(data["val_logits"], data["val_labels"])
    assert abs(temperature - data["T_opt"]) / data["T_opt"] < 1e-4  # METHODS.md §6's acceptance
    assert abs(temperature - data["T_opt"]) / data["T_opt"] < 1e-7  # what the bounded search reaches
    logits = t(np.concatenate([data["test_logits"], data["ood_logits"]]))
    pred = softmax.Softmax().predict({"image": {"logits": logits}})
    np.testing.assert_allclose(-pred.scores["msp"], data["msp"], rtol=1e-6)
    np.testing.assert_allclose(pred.total, data["entropy"], rtol=1e-6)
    np.testing.assert_allclose(pred.scores["energy"], data["energy"], rtol=1e-6)
    after = softmax.scaled(pred, float(data["T_opt"]))
    np.testing.assert_allclose(-after.scores["msp"], data["msp_ts"], rtol=1e-6)
    np.testing.assert_allclose(after.total, data["entropy_ts"], rtol=1e-6)
    np.testing.assert_allclose(after.scores["energy"], data["energy"], rtol=1e-6)  # energy stays on raw logits
    assert torch.equal(after.probs.argmax(-1), pred.probs.argmax(-1))


@pytest.mark.parametrize("row", [0, 1, 2])
def test_ood_measures_match_scikit_learn_and_openood_including_ties(row):
    data = oracle("ood_metrics")
    columns = list(data["metric_columns"])
    confidence, is_ood = data[f"conf_{data['score_names'][row]}"], data["is_ood"].astype(bool)
    got = ood_measures(-confidence[~is_ood], -confidence[is_ood])
    expected = {"auroc": "sk_auroc", "aupr_in": "sk_ap_in", "aupr_out": "sk_ap_out", "fpr95": "openood_fpr95_oodpos"}
    for name, column in expected.items():  # the same library calls: agreement to rounding
        assert got[name] == pytest.approx(data["metrics"][row][columns.index(column)], rel=1e-12), name
    assert got["aupr_out"] == pytest.approx(data["metrics"][row][columns.index("tu_aupr_ap_oodpos")], rel=1e-6)
