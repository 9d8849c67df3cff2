"""Kernel benchmark (benchmarks.lstm_kernel): its rows, its arithmetic and its errors, on tiny sizes (no timing
assertions)."""
import pytest
import torch

from benchmarks.lstm_kernel import COLUMNS, lstm_seconds, main, measure
from sentiment_lib.fused_rnn import cpu_has_bf16_rnn

TINY = dict(steps=3, embed=3, hidden=4, repeats=1, roof_size=32)


def test_one_row_per_precision_layout_and_batch_with_consistent_arithmetic():
    before = torch.get_num_threads()
    table = measure([1, 2], [2, 5], side_by_side=2, **TINY)
    assert torch.get_num_threads() == before  # restored
    assert list(table.columns) == COLUMNS
    precisions = ["float32", "bfloat16"] if cpu_has_bf16_rnn() else ["float32"]
    layouts = ["1 process × 1 thread(s)", "1 process × 2 thread(s)", "2 processes × 1 thread"]
    assert len(table) == len(precisions) * len(layouts) * 2
    assert set(table.precision) == set(precisions) and table.layout.drop_duplicates().tolist() == layouts
    flops = 3 * 2 * 4 * 4 * (3 + 4) * 3  # per review: 3 × 2 × 4H(E+H) per token, 3 tokens
    single = table[table.layout != "2 processes × 1 thread"]
    expected = flops * single.batch / (single["ms fwd+bwd"] / 1000) / 1e9
    assert (single["GFLOP/s"] - expected).abs().max() < 1e-9 * expected.max()
    assert ((table["% roof"] - 100 * table["GFLOP/s"] / table["roof GFLOP/s"]).abs() < 1e-9).all()
    one = table[table.layout == "1 process × 1 thread(s)"]
    assert (one["× one thread"] == 1.0).all()
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
