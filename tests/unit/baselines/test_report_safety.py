"""`report` on shared run folders: no hang, no memory exhaustion, no path out of the run folder, every
malformed input named at once with exit 2 before any output, and no markup or formula from a name.

The hostile cases run under `bounded`: an alarm and a cap on the address space, so that a
regression fails the test instead of blocking it or eating the machine's memory.
"""

import argparse
import contextlib
import io
import json
import os
import re
import resource
import signal
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pytest

from luma_noise.baselines import report
from tests.unit.baselines.test_report import _run

MODEL = {("mcd", "image"): (0.8, 1.0, 0.5, 0.6)}


@contextlib.contextmanager
def bounded(seconds: int = 60, headroom: int = 2 ** 30):
    """Raise TimeoutError after `seconds`; allow `headroom` bytes of address space beyond what is mapped now."""
    # pandas' Arrow-backed strings reserve their allocator's arenas on first use (virtual address
    # space, not memory): reserve them before measuring, so the cap bounds what the report reads.
    pd.DataFrame([{"name": "warm-up"}]).astype(str)
    with open("/proc/self/status") as status:
        mapped = int(re.search(r"VmSize:\s+(\d+) kB", status.read()).group(1)) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom, hard))

    def expire(*_):
        raise TimeoutError(f"report did not return within {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _report(runs, out) -> tuple:
    """(exit status, stdout, stderr) of `report RUNS --output-dir OUT`, in this process."""
    parser = argparse.ArgumentParser()
    report.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", *map(str, runs), "--output-dir", str(out)])
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), bounded():
        status = args.func(args)
    return status, stdout.getvalue(), stderr.getvalue()


def _refused(runs, out, *fragments) -> str:
    status, _, stderr = _report(runs, out)
    assert status == 2, stderr
    for fragment in fragments:
        assert str(fragment) in stderr, (fragment, stderr)
    assert "Traceback" not in stderr and not out.exists()  # refused before any output
    return stderr


def _bomb(path, nbytes: int) -> None:
    """An .npz whose one member declares `nbytes` of zeros (deflate: about 1/230 of it on disk)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("test_probs.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            chunk = bytes(2 ** 24)
            for _ in range(nbytes // len(chunk)):
                member.write(chunk)


def test_results_json_linked_to_dev_zero_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").symlink_to("/dev/zero")
    _refused([tmp_path], tmp_path / "out", tmp_path / "run" / "results.json", "symbolic link")


def test_results_json_as_a_fifo_is_refused_without_blocking(tmp_path):
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "results.json")
    _refused([tmp_path], tmp_path / "out", tmp_path / "run" / "results.json", "FIFO")


def test_predictions_as_a_fifo_is_refused_without_blocking(tmp_path):
    _run(tmp_path, "run", "clean", 42, MODEL)
    npz = tmp_path / "run" / "predictions" / "mcd-image-seed42.npz"
    npz.unlink()
    os.mkfifo(npz)
    _refused([tmp_path], tmp_path / "out", npz, "FIFO")


def test_a_results_json_larger_than_the_limit_is_refused_unread(tmp_path):
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / "results.json", "wb") as file:
        file.truncate(17 * 2 ** 20)  # sparse: 17 MiB of zeros on disk costs nothing
    _refused([tmp_path], tmp_path / "out", "results.json", "more than the 16777216 bytes")


def test_a_zip_bomb_npz_is_refused_from_its_directory_without_allocating(tmp_path):
    _run(tmp_path, "run", "clean", 42, MODEL)
    npz = tmp_path / "run" / "predictions" / "mcd-image-seed42.npz"
    _bomb(npz, 2 ** 30)  # 1 GiB of zeros declared, 4.7 MB on disk
    assert npz.stat().st_size < 8 * 2 ** 20
    tracemalloc.start()
    try:
        _refused([tmp_path], tmp_path / "out", npz, "declare 10737419", "more than the 268435456")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2 ** 20  # numpy registers its buffers with tracemalloc: no GB array was made


def test_an_npy_header_larger_than_its_data_is_refused(tmp_path):
    """A small member whose header claims 80 GB: numpy would allocate the shape before reading."""
    _run(tmp_path, "run", "clean", 42, MODEL)
    npz = tmp_path / "run" / "predictions" / "mcd-image-seed42.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("test_probs.npy", header.getvalue() + bytes(800))
    _refused([tmp_path], tmp_path / "out", npz, "test_probs.npy", "(10000000000,)")


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_predictions_outside_the_run_folder_are_refused(tmp_path, where):
    _run(tmp_path, "other", "low_diversity", 42, MODEL)  # an .npz elsewhere that would otherwise be read
    secret = tmp_path / "other" / "predictions" / "mcd-image-seed42.npz"
    _run(tmp_path, "run", "clean", 42, MODEL, predictions=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    entry = {"parent": "../other/predictions/mcd-image-seed42.npz", "absolute": str(secret),
             "symlink": "predictions/link.npz"}[where]
    if where == "symlink":
        (tmp_path / "run" / "predictions").mkdir()
        (tmp_path / "run" / "predictions" / "link.npz").symlink_to(secret)
    results["results"][0]["predictions"] = entry
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    _refused([tmp_path / "run"], tmp_path / "out", "results[0].predictions", "points outside")


def test_a_link_inside_the_run_folder_is_followed(tmp_path):
    _run(tmp_path, "run", "clean", 42, MODEL)
    predictions = tmp_path / "run" / "predictions"
    (predictions / "link.npz").symlink_to(predictions / "mcd-image-seed42.npz")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    results["results"][0]["predictions"] = "predictions/link.npz"
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    status, _, stderr = _report([tmp_path], tmp_path / "out")
    assert status == 0, stderr
    assert "conformal_coverage" in set(pd.read_csv(tmp_path / "out" / "results.csv").measure)


def _set(key, value):
    """A change to results[0] of the run's results.json."""
    def change(run):
        data = json.loads((run / "results.json").read_text())
        data["results"][0][key] = value
        (run / "results.json").write_text(json.dumps(data))
    return change


def _array(key, value, seed=42):
    """A change to one array of the run's predictions (`value(arrays)` -> new array, None to drop)."""
    def change(run):
        path = run / "predictions" / f"mcd-image-seed{seed}.npz"
        with np.load(path) as data:
            arrays = dict(data)
        arrays[key] = value(arrays)
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return change


def _not_utf8(run):
    (run / "results.json").write_bytes(b'{"config": "clean", "results": [], "note": "\xff"}')


MALFORMED = {  # what is broken -> (change, fragments the message must hold besides the file)
    "seed null": (_set("seed", None), ["results[0].seed", "expected an integer"]),
    "seed float": (_set("seed", 4.5), ["results[0].seed", "expected an integer"]),
    "required metric null": (_set("accuracy", None), ["results[0].accuracy", "required"]),
    "metric NaN": (_set("aleatoric", float("nan")), ["results[0].aleatoric", "finite"]),
    "metric infinite": (_set("ood_auroc", float("inf")), ["results[0].ood_auroc", "finite"]),
    "accuracy above 1": (_set("accuracy", 1.5), ["results[0].accuracy", "[0, 1]"]),
    "method null": (_set("method", None), ["results[0].method", "expected a non-empty name"]),
    "method with a newline": (_set("method", "a\nb"), ["results[0].method", "control"]),
    "optional metric text": (_set("ece", "low"), ["results[0].ece", "expected a number"]),
    "predictions a number": (_set("predictions", 7), ["results[0].predictions"]),
    "predictions with a NUL byte": (_set("predictions", "predictions/a\x00.npz"), ["results[0].predictions", "not a usable path"]),
    "not UTF-8": (_not_utf8, ["not UTF-8"]),
    "1-D test_probs": (_array("test_probs", lambda a: a["test_probs"][:, 0]), ["test_probs", "2-D"]),
    "NaN probability": (_array("test_probs", lambda a: np.where(np.eye(300, 42, dtype=bool), np.nan, a["test_probs"])),
                        ["test_probs", "NaN or infinite"]),
    "probabilities not summing to 1": (_array("test_probs", lambda a: 2 * a["test_probs"]), ["test_probs", "sum to 1"]),
    "label out of range": (_array("test_labels", lambda a: a["test_labels"] + 42), ["test_labels", "[0, 41]"]),
    "float labels": (_array("validation_labels", lambda a: a["validation_labels"] * 1.0), ["validation_labels", "integer"]),
    "short uncertainty": (_array("test_epistemic", lambda a: a["test_epistemic"][:10]), ["test_epistemic", "300"]),
    "infinite uncertainty": (_array("ood_aleatoric", lambda a: a["ood_aleatoric"] / 0), ["ood_aleatoric", "NaN or infinite"]),
    "object array": (_array("test_aleatoric", lambda a: np.array([{}, []], dtype=object)), ["object arrays"]),
    "numeric conflict flags": (_array("test_conflict_modality", lambda a: np.zeros(300)), ["test_conflict_modality", "str"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_input_is_named_with_its_file_and_entry(tmp_path, case):
    change, fragments = MALFORMED[case]
    _run(tmp_path, "run", "clean", 42, MODEL)
    with np.errstate(divide="ignore"):
        change(tmp_path / "run")
    file = "results.json" if "[0]" in fragments[0] or case == "not UTF-8" else "mcd-image-seed42.npz"
    _refused([tmp_path], tmp_path / "out", tmp_path / "run" / ("predictions/" * (file != "results.json")) / file,
                 *fragments)


def test_every_problem_of_every_folder_is_listed_at_once(tmp_path):
    _run(tmp_path, "a", "clean", 42, MODEL)
    _run(tmp_path, "b", "clean", 43, MODEL)
    for change in (_set("seed", None), _set("epistemic", None)):
        change(tmp_path / "a")
    _array("test_probs", lambda a: a["test_probs"][:, 0], seed=43)(tmp_path / "b")
    stderr = _refused([tmp_path], tmp_path / "out", "results[0].seed", "results[0].epistemic", "test_probs")
    assert f"{tmp_path / 'a' / 'results.json'}" in stderr and f"{tmp_path / 'b' / 'predictions'}" in stderr


HOSTILE = '<img src=x onerror=alert(1)>|`$\\frac{$'


def test_names_go_escaped_into_the_markdown_and_neutralised_into_the_csv(tmp_path):
    _run(tmp_path, "a", "clean", 42, {(HOSTILE, "image"): (0.8, 1.0, 0.5, 0.6),
                                      ('=HYPERLINK("x")', "image"): (0.7, 1.0, 0.5, 0.6),
                                      ("@SUM(A1)", "image"): (0.7, 1.0, 0.5, 0.6)})
    _run(tmp_path, "b", "clean", 42, {("mcd", "image"): (0.8, 1.0, 0.5, 0.6)},
         fields={"note": "`<b>bold</b>`|x"})
    status, _, stderr = _report([tmp_path], tmp_path / "out")
    assert status == 0, stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert "<img" not in text and "<b>" not in text.replace("`<b>bold</b>`", "")
    assert "onerror=alert\\(1\\)&gt;\\|" in text and "\\$\\\\frac" in text  # shown as text, not run
    tables = re.findall(r"(?m)(?:^\|.*\n)+", text)
    assert any("onerror" in table for table in tables)
    for table in tables:  # a name ends no cell early: every row has the header's count of unescaped |
        counts = {len(re.findall(r"(?<!\\)(?:\\\\)*\|", line)) for line in table.splitlines()}
        assert len(counts) == 1, table
    assert "`` clean{note=\"`<b>bold</b>`|x\"} ``" in text  # a code span longer than the backticks inside
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert {"'=HYPERLINK(\"x\")", "'@SUM(A1)", HOSTILE} <= set(table.method)
    assert not table.method.str.match(r"[=+\-@]").any()


def test_an_output_folder_under_a_file_is_refused_before_any_work(tmp_path):
    _run(tmp_path, "run", "clean", 42, MODEL)
    (tmp_path / "file").write_text("not a folder")
    _refused([tmp_path / "run"], tmp_path / "file" / "out", f"--output-dir {tmp_path / 'file' / 'out'}", "not a folder")
