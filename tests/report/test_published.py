"""The published record sits beside a run's numbers, best first, each row with its source."""
from sentiment_lib import published


def test_the_run_s_rows_join_the_record_in_order_with_their_source():
    table = published.beside({"final model": 0.9008, "baseline": 0.8548})
    assert list(table["test accuracy"]) == sorted(table["test accuracy"], reverse=True)
    assert table.loc["final model", "source"] == "this run"
    assert len(table) == len(published.RECORD) + 2
    assert all(source for source in table["source"])
    assert table.loc["LSTM, language-model start + virtual adversarial training", "test accuracy"] == 0.9409
