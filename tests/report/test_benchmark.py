"""Benchmark: the table's columns and last line on a tiny synthetic split (no timing assertions)."""
import re

import numpy as np
import pytest
import torch

from sentiment_lib.batching import EncodedSplit
from benchmarks import bench
from benchmarks.bench import (COLUMNS, PROJECT, PROJECT_FP32, SEED_STYLE, BenchOptions, lstm_train_flops_per_token,
                              main, make_ways, run_benchmark, train_peak_memory)

VOCAB = 40


@pytest.fixture(autouse=True)
def restore_threads():
    """The benchmark sets torch's thread count (``threads=1`` below); give the next test the previous one."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def tiny_split(n, seed):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, VOCAB, size=rng.integers(1, 30)).astype(np.int32) for _ in range(n)]
    return EncodedSplit(ids, np.arange(n) % 2)


def tiny_options(**overrides):
    values = dict(batches=2, hidden=4, embed=4, max_len=24, eval_size=20, threads=1, chunk=1, memory=False,
                  roof_size=64)
    return BenchOptions(**{**values, **overrides})


def test_report_has_every_column_one_row_per_way_and_ends_with_the_speedup():
    result = run_benchmark(tiny_split(200, 0), tiny_split(40, 1), VOCAB, tiny_options(extras=["packed"]))
    assert list(result.table.columns) == COLUMNS
    fp32 = [PROJECT_FP32] if make_ways()[1].amp_dtype else []  # shown when the fast path took bfloat16
    assert result.table["way"].tolist() == [SEED_STYLE, PROJECT, *fp32, "packed"]
    measured = result.table.drop(columns=["way", "amp", "peak MiB", "train MiB"])
    assert np.isfinite(measured.to_numpy(dtype=float)).all()
    assert (result.table["real tok/s"] > 0).all() and result.table["val acc"].between(0, 1).all()
    report = result.report()
    header = next(line for line in report.splitlines() if line.lstrip().startswith("way"))
    assert all(column in header for column in COLUMNS)
    assert re.fullmatch(r"speedup: \d+\.\d\d", report.splitlines()[-1])


def test_the_fast_path_takes_bfloat16_only_where_it_pays_and_is_compared_with_float32(monkeypatch):
    monkeypatch.setattr(bench, "choose_precision", lambda preference: None)
    assert [(w.name, w.amp_dtype) for w in make_ways()] == [(SEED_STYLE, None), (PROJECT, None)]
    monkeypatch.setattr(bench, "choose_precision", lambda preference: "bfloat16")
    assert [(w.name, w.amp_dtype) for w in make_ways()] == [(SEED_STYLE, None), (PROJECT, "bfloat16"),
                                                            (PROJECT_FP32, None)]
    result = run_benchmark(tiny_split(120, 0), tiny_split(40, 1), VOCAB, tiny_options())
    paired = next(line for line in result.notes if line.startswith("bf16 vs fp32"))
    assert "paired 95% interval" in paired and "on 20 reviews" in paired  # eval_size 20


def test_a_whole_epoch_without_accuracy_check():
    result = run_benchmark(tiny_split(70, 0), tiny_split(20, 1), VOCAB, tiny_options(batches=None, eval_size=0))
    assert result.table["val acc"].isna().all()
    assert result.report().splitlines()[-1].startswith("speedup: ")


def test_peak_memory_is_measured_for_a_training_step():
    way = make_ways()[1]
    memory = train_peak_memory(way, tiny_split(8, 0), VOCAB, tiny_options())
    assert memory["peak MiB"] > 0 and np.isfinite(memory["train MiB"])


@pytest.mark.parametrize("embed, hidden, layers, bidirectional", [
    (128, 256, 1, True), (128, 256, 2, True), (32, 16, 3, False), (8, 4, 2, True)])
def test_flop_count_is_six_per_weight_of_the_torch_lstm(embed, hidden, layers, bidirectional):
    """Independent of the formula: a matrix weight costs 2 FLOPs (multiply-add) per token forward and twice
    that backward, so a step costs 6 × the number of weight-matrix entries of the same ``nn.LSTM``."""
    lstm = torch.nn.LSTM(embed, hidden, layers, bidirectional=bidirectional)
    weights = sum(p.numel() for name, p in lstm.named_parameters() if name.startswith("weight"))
    assert lstm_train_flops_per_token(embed, hidden, layers, bidirectional) == 6 * weights


def test_flop_count_for_the_tutorial_bilstm():
    assert lstm_train_flops_per_token(128, 256) == pytest.approx(4.72e6, rel=1e-3)  # 4.72 MFLOP per real token


def test_unknown_way_and_missing_data_name_the_fix(capsys):
    with pytest.raises(ValueError, match="project@128"):
        make_ways(["turbo"])
    assert main(["--profile", "quick", "--no-memory"]) == 2
    assert "make run PROFILE=quick" in capsys.readouterr().err


def test_the_seed_style_model_lets_trailing_padding_into_the_backward_direction():
    """The reference the project is compared with reads the padding; the project's model (same weights) does not."""
    from benchmarks.seed_style import PaddedBiLSTMPool
    from sentiment_lib.models import BiLSTMPool

    lengths = torch.tensor([9, 3, 1, 6])
    tokens = torch.randint(2, VOCAB, (4, 12), generator=torch.Generator().manual_seed(0))
    tokens[torch.arange(12)[None, :] >= lengths[:, None]] = 0
    torch.manual_seed(0)
    project = BiLSTMPool(VOCAB, embed_dim=8, hidden_size=6)
    seed_style = PaddedBiLSTMPool(VOCAB, embed_dim=8, hidden_size=6)
    seed_style.load_state_dict(project.state_dict())
    assert not torch.allclose(seed_style(tokens, lengths), project(tokens, lengths))
    # A review that fills the whole window has no padding to read: both agree on it.
    wide = torch.randint(2, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    both = torch.tensor([12, 12])
    torch.testing.assert_close(seed_style(wide, both), project(wide, both))
