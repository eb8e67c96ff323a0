"""MC dropout, the deep ensemble and RCML give, through the one method runner, exactly the numbers
they gave before they became method objects.

`tests/data/paper_port/` holds the results.json rows and every prediction array of the runs of
`paper_port.GROUPS` (both modes, validation passes below the final ones, an independently trained
ensemble, bf16 autocast) recorded on the code before the port (commit f3927bd, `LumaModel` and
`train._train_run`); this test passed on them exactly after the port (8a615e1), and again with
the flat numpy inputs of the training path; they were recorded once more (`python -m
tests.support.paper_port record`) when the optimiser became fused AdamW, which changes the
training trajectories at float32 rounding, and when fixed mode's evaluation loss came to be
computed on the predictive distribution's draws (`uncertainty.predictive_and_loss`: the validation
losses changed, no stopping epoch did, the prediction arrays moved by at most 1.2e-8 (float32
rounding of exp(log-softmax)) and 2.4e-4 under bf16; the faithful records stayed byte for byte).
They run with `memory_format="contiguous"`, the layout of the convolutions then (`channels_last`,
the default since, draws the image branch's dropout masks in another order; `test_paper.py` checks
that the two layouts agree without dropout). With
the deep ensemble's members called one by one as before (`--method-option de.batched=never`),
every recorded number must come back equal: the same
parameters are created in the same order from the same seed, and every random draw
(initialisation, dropout masks, ε, evaluation noise) is taken in the same order from the same
generator, so equality is exact, not approximate. Rows may gain keys (the measures every method
gets), never lose or change one.

By default the ensemble's members are evaluated in one batched call, whose kernels sum float32
values in another order: its prediction arrays agree with the recorded ones within 1e-5 (values of
order 1; float32 rounding of sums over up to 12,544 features), the deep ensemble's accuracy exactly.
"""

import json

import numpy as np
import pytest

from tests.support.paper_port import GROUPS, LOOPED, RECORDED, run_group


@pytest.fixture(scope="module")
def port_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("paper-port-cache")


def _recorded(group):
    with np.load(RECORDED / f"{group}.npz") as data:
        return json.loads((RECORDED / f"{group}.json").read_text()), {k: data[k] for k in data.files}


@pytest.mark.parametrize("group", list(GROUPS))
def test_paper_methods_give_the_recorded_numbers(group, mirror, tiny_bert, port_cache, tmp_path):
    extra = LOOPED if "de" in GROUPS[group]["methods"] else {}
    rows, arrays = run_group(group, mirror[0], tiny_bert, port_cache, tmp_path / group, **extra)
    recorded = json.loads((RECORDED / f"{group}.json").read_text())
    assert len(rows) == len(recorded)
    for row, before in zip(rows, recorded):
        assert {k: row.get(k) for k in before} == before, (row["method"], row["modality"])
    with np.load(RECORDED / f"{group}.npz") as data:
        assert set(data.files) <= set(arrays), sorted(set(data.files) - set(arrays))
        for key in data.files:
            np.testing.assert_array_equal(arrays[key], data[key], err_msg=key)


def test_batched_ensemble_gives_the_recorded_predictions_to_float32_rounding(mirror, tiny_bert, port_cache,
                                                                             tmp_path):
    rows, arrays = run_group("fixed", mirror[0], tiny_bert, port_cache, tmp_path / "fixed", methods=("de",))
    recorded_rows, recorded = _recorded("fixed")
    before = {(r["method"], r["modality"]): r for r in recorded_rows}
    for row in rows:
        assert row["accuracy"] == before[row["method"], row["modality"]]["accuracy"]
    keys = [k for k in recorded if k.startswith("de-") and recorded[k].dtype.kind == "f"]
    assert keys
    for key in keys:
        np.testing.assert_allclose(arrays[key], recorded[key], rtol=1e-5, atol=1e-5, err_msg=key)
