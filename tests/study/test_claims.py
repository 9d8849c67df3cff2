"""Claims checked against their numbers: the table a page shows and what the manifest keeps."""
import pytest

from sentiment_lib import claims, rundir


def test_a_claim_the_numbers_contradict_is_shown_as_not_holding():
    accuracy = 0.71
    checked = claims.check([
        claims.Claim("The padded read stays near chance.", accuracy < 0.6, f"padded read {accuracy:.2f}"),
        claims.Claim("The model learns.", accuracy > 0.5, f"accuracy {accuracy:.2f}"),
    ])
    assert list(checked["verdict"]) == [claims.FAILS, claims.HOLDS]
    assert list(checked.index) == [1, 2]
    assert checked.loc[1, "evidence"] == "padded read 0.71"


def test_claims_need_a_sentence_and_at_least_one_row():
    with pytest.raises(ValueError, match="needs its sentence"):
        claims.Claim("  ", True, "x")
    with pytest.raises(ValueError, match="at least one Claim"):
        claims.check([])


def test_claims_are_recorded_per_notebook_and_counted(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("SENTIMENT_ARTIFACTS", str(tmp_path))
    claims.record("smoke", "03", [claims.Claim("a", np.bool_(True), "1"), claims.Claim("b", False, "2")])
    claims.record("smoke", "04", [claims.Claim("c", True, "3")])
    claims.record("smoke", "03", [claims.Claim("a", True, "1")])  # a rerun of 03 replaces its claims
    recorded = rundir.read_manifest("smoke")["claims"]
    assert recorded["03"] == [{"claim": "a", "holds": True, "evidence": "1"}]
    assert claims.summary(recorded) == (2, 0)
    assert claims.summary({"x": [{"holds": True}, {"holds": False}]}) == (1, 1)
