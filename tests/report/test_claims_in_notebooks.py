"""A page shows a claim its numbers contradict as not holding: notebook 03 run on made-up reviews, once as it is
and once with parameters under which the baseline cannot learn."""
import nbformat
import pytest

from sentiment_lib import chain, pipeline, rundir

from tiny_data import save_tiny_prepared

LEARNS = "The baseline learns"


def _claim_rows(path):
    """The rows (HTML) of the last claims table of an executed notebook (its conclusions), as a reader sees it."""
    nb = nbformat.read(path, as_version=4)
    tables = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if "does not hold" in out.get("data", {}).get("text/html", "")
              or "✓ holds" in out.get("data", {}).get("text/html", "")]
    return tables[-1].split("<tr>")[2:]


@pytest.mark.slow
def test_a_rerun_that_contradicts_a_claim_flags_it_on_the_page(tmp_path):
    save_tiny_prepared("smoke", n_train=96, n_val=48, n_test=64)
    source = chain.notebooks_dir() / "03_baseline.ipynb"
    learnt = tmp_path / "learnt.ipynb"
    pipeline.execute(source, learnt, {"PROFILE": "smoke", "EPOCHS": 6, "LR": 0.01, "SEEDS": 2, "MAX_LEN": 32,
                                      "PROCESSES": 1}, progress=False, record=False)
    assert [c["holds"] for c in rundir.read_manifest("smoke")["claims"]["03"] if c["claim"].startswith(LEARNS)] == [True]
    # a learning rate so small that nothing moves: the same sentence, now contradicted, and the page says so
    stuck = tmp_path / "stuck.ipynb"
    pipeline.execute(source, stuck, {"PROFILE": "smoke", "EPOCHS": 1, "LR": 1e-9, "SEEDS": 2, "MAX_LEN": 32,
                                     "PROCESSES": 1}, progress=False, record=False)
    recorded = [c for c in rundir.read_manifest("smoke")["claims"]["03"] if c["claim"].startswith(LEARNS)]
    assert [c["holds"] for c in recorded] == [False]
    assert [("✗ does not hold" in row) for row in _claim_rows(stuck) if LEARNS in row] == [True]
    assert [("✓ holds" in row) for row in _claim_rows(learnt) if LEARNS in row] == [True]
