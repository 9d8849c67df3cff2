"""Kernel benchmark (benchmarks.lstm_kernel): its rows, its arithmetic and its errors, on tiny sizes (no timing
assertions)."""
import pytest
import torch

from benchmarks.lstm_kernel import COLUMNS, lstm_seconds, main, measure
from sentiment_lib.runtime.fused_rnn import cpu_has_bf16_rnn

TINY = dict(steps=3, embed=3, hidden=4, repeats=1, roof_size=32)


def test_one_row_per_precision_layout_and_batch_with_consistent_arithmetic():
    before = torch.get_num_threads()
    table = measure([1, 2], [2, 5], side_by_side=2, **TINY)
    assert torch.get_num_threads() == before  # restored
    assert list(table.columns) == COLUMNS
    precisions = ["float32", "bfloat16"] if cpu_has_bf16_rnn() else ["float32"]
    layouts = [(1, 1), (1, 2), (2, 1)]  # (processes, threads each)
    assert len(table) == len(precisions) * len(layouts) * 2
    assert set(table.precision) == set(precisions)
    assert list(dict.fromkeys(zip(table.processes, table.threads))) == layouts
    flops = 3 * 2 * 4 * 4 * (3 + 4) * 3  # per review: 3 × 2 × 4H(E+H) per token, 3 tokens
    single = table[table.processes == 1]
    expected = flops * single.batch / (single["ms fwd+bwd"] / 1000) / 1e9
    assert (single["GFLOP/s"] - expected).abs().max() < 1e-9 * expected.max()
    assert ((table["% roof"] - 100 * table["GFLOP/s"] / table["roof GFLOP/s"]).abs() < 1e-9).all()
    one = table[(table.processes == 1) & (table.threads == 1)]
    assert (one["× one thread"] == 1.0).all()
    rate_of = one.set_index(["precision", "batch"])["GFLOP/s"]
    for _, row in table.iterrows():
        assert row["× one thread"] == pytest.approx(row["GFLOP/s"] / rate_of[(row.precision, row.batch)])
    assert (table["GFLOP/s"] > 0).all() and table["× one thread"].notna().all()


def test_bfloat16_forward_and_backward_run_where_the_cpu_has_it():
    if not cpu_has_bf16_rnn():
        pytest.skip("this CPU has no native bf16 recurrence (float32 rows only)")
    assert lstm_seconds(2, 3, 3, 4, True, repeats=1) > 0


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads takes positive integers"),
    (["--batch", "-1"], "--batch takes positive integers"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--side-by-side", "-2"], "--side-by-side must be 0"),
])
def test_bad_sizes_name_the_option(argv, message, capsys):
    assert main(argv + ["--repeats", "1"]) == 2
    assert message in capsys.readouterr().err
