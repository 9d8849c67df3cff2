"""``python -m sentiment_lib predict``: label reviews from arguments, a file or stdin with a run's bundle."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from sentiment_lib import config, predict
from sentiment_lib.__main__ import main
from sentiment_lib.bundle import Bundle, load_bundle, save_bundle, save_ensemble
from sentiment_lib.models import ModelConfig, build_model
from sentiment_lib.train import TrainConfig, fit

from tiny_data import tiny_prepared

PREPROCESSING = {"max_len": 64, "truncation": "head+tail", "remove_stopwords": False}


@pytest.fixture(scope="module")
def trained():
    """A bag-of-embeddings model that has learnt the tiny data's cue words (a second of training)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from sentiment_lib.batching import make_loader

        prepared = tiny_prepared(n_train=256, n_val=64)
        model_config = ModelConfig(name="bag_of_embeddings", vocab_size=len(prepared.vocab), embed_dim=16,
                                   hidden_size=16)
        torch.manual_seed(0)
        model = build_model(model_config)
        train = make_loader(prepared.splits["train"], 32, 64, shuffle=True, seed=0)
        val = make_loader(prepared.splits["val"], 64, 64)
        fit(model, train, val, TrainConfig(epochs=15, lr=2e-2, patience=None, device="cpu", progress=False))
        return model, model_config, prepared.vocab
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def final_bundle(trained):
    model, model_config, vocab = trained
    return save_bundle(predict.config.final_model_path("smoke"), model, model_config, vocab, PREPROCESSING,
                       {"accuracy": 1.0})


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["predict", "--profile", "smoke", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def parse(line: str) -> tuple[str, float, str]:
    label, prob, text = line.split("\t")
    return label, float(prob), text


def test_labels_reviews_given_as_arguments(final_bundle, capsys):
    reviews = ["good great superb wonderful w1 w2", "bad awful dull boring w1 w2"]
    code, lines, err = run(capsys, *reviews)
    assert code == 0, err
    assert [parse(line)[0] for line in lines] == ["positive", "negative"]
    positive = load_bundle(final_bundle).predict(reviews)  # P(positive) per review
    expected = [positive[0], 1.0 - positive[1]]  # each line prints the probability of its own label
    for line, review, want in zip(lines, reviews, expected):
        label, prob, text = parse(line)
        assert prob == pytest.approx(want, abs=5e-5)  # printed with 4 decimals
        assert text == review


def test_an_ensemble_bundle_prints_the_mean_probability(trained, capsys):
    model, model_config, vocab = trained
    torch.manual_seed(1)
    untrained = build_model(model_config).eval()  # a second opinion, near 0.5 everywhere
    save_ensemble(predict.config.final_model_path("smoke"), [("trained", model, model_config, PREPROCESSING),
                                                      ("untrained", untrained, model_config, PREPROCESSING)], vocab)
    reviews = ["good great superb wonderful w1 w2", "bad awful dull boring w1 w2"]
    code, lines, err = run(capsys, *reviews)
    assert code == 0, err
    alone = [Bundle(m, model_config, vocab, PREPROCESSING).predict(reviews) for m in (model, untrained)]
    assert abs(alone[0] - alone[1]).min() > 0.1  # the mean differs from either model's probability
    mean = (alone[0] + alone[1]) / 2
    assert [parse(line)[1] for line in lines] == pytest.approx([mean[0], 1 - mean[1]], abs=5e-5)


def test_reads_a_file_of_reviews_one_per_line(final_bundle, capsys, tmp_path):
    file = tmp_path / "reviews.txt"
    file.write_text("good great loved w3\n\n  \nawful hated w4\r\nsuperb w5 w6\n", encoding="utf-8")
    code, lines, err = run(capsys, "--file", str(file))
    assert code == 0, err
    assert [parse(line)[0] for line in lines] == ["positive", "negative", "positive"]  # blank lines skipped


def test_reads_stdin_when_no_review_is_given(final_bundle, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("good great w1\nbad awful w2\n"))
    code, lines, _ = run(capsys)
    assert code == 0 and len(lines) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("dull boring w7\n"))
    code, lines, _ = run(capsys, "--file", "-")
    assert code == 0 and parse(lines[0])[0] == "negative"


def test_long_reviews_are_shortened_to_one_line(final_bundle, capsys):
    review = "good  great\tsuperb\n" + " ".join(f"w{i % 30}" for i in range(60))
    code, lines, _ = run(capsys, review)
    assert code == 0 and len(lines) == 1
    text = parse(lines[0])[2]
    assert len(text) == predict.SNIPPET_CHARS and text.endswith("…") and text.startswith("good great superb w0")


def test_missing_bundle_names_the_fix(capsys):
    code, lines, err = run(capsys, "good film")
    assert code == 2 and lines == []
    assert "make run PROFILE=smoke" in err and str(predict.config.final_model_path("smoke")) in err


def test_missing_final_bundle_lists_the_runs_other_bundles(trained, capsys):
    model, model_config, vocab = trained
    other = save_bundle(config.models_dir("smoke") / "baseline.pt", model, model_config, vocab, PREPROCESSING)
    code, _, err = run(capsys, "good film")
    assert code == 2 and str(other) in err and "--model" in err
    code, lines, err = run(capsys, "--model", str(other), "good great w1")
    assert code == 0 and len(lines) == 1, err


def test_a_bundle_path_that_does_not_exist(final_bundle, capsys, tmp_path):
    code, _, err = run(capsys, "--model", str(tmp_path / "nope.pt"), "good film")
    assert code == 2 and "No model bundle" in err


@pytest.mark.parametrize("argv, message", [
    (["good film", "  "], "empty"),
    (["!!! ???"], "no words"),
    (["--file", "/no/such/reviews.txt"], "No file"),
    (["--file", "/tmp"], "/tmp is a folder"),
])
def test_bad_input_is_a_clear_error(final_bundle, capsys, argv, message):
    code, lines, err = run(capsys, *argv)
    assert code == 2 and lines == [] and message in err


def test_lines_that_cannot_be_scored_are_named_by_file_line_and_the_rest_scored(final_bundle, capsys, tmp_path):
    file = tmp_path / "batch.txt"
    file.write_text("a good film\n\nboring and bad\n!!! ???\nNaN\nsuperb acting\n")
    code, lines, err = run(capsys, "--file", str(file))
    assert code == 0 and [parse(line)[2] for line in lines] == ["a good film", "boring and bad", "superb acting"]
    assert f"skipped 2 of 5 lines that cannot be scored: {file} line 4: no words" in err
    assert f"{file} line 5: a placeholder ('NaN'), not a review" in err  # file lines count the blank line 2
    junk = tmp_path / "junk.txt"
    junk.write_text("???\nNULL\n")
    code, lines, err = run(capsys, "--file", str(junk))
    assert code == 2 and lines == [] and "None of the 2 lines can be scored" in err


def test_a_byte_order_mark_names_the_files_encoding(final_bundle, capsys, tmp_path):
    for codec in ("utf-16", "utf-8-sig"):
        file = tmp_path / f"{codec}.txt"
        file.write_bytes("un film très réussi\nsuperb acting\n".encode(codec))
        code, lines, err = run(capsys, "--file", str(file))
        assert code == 0, err
        assert [parse(line)[2] for line in lines] == ["un film très réussi", "superb acting"]


def test_a_file_that_is_not_utf8_names_the_fix(final_bundle, capsys, tmp_path):
    file = tmp_path / "latin1.txt"
    file.write_bytes("un film tr\u00e8s r\u00e9ussi\n".encode("latin-1"))
    code, lines, err = run(capsys, "--file", str(file))
    assert code == 2 and lines == [] and "is not utf-8 text" in err and "--encoding latin-1" in err
    code, lines, _ = run(capsys, "--file", str(file), "--encoding", "latin-1")
    assert code == 0 and len(lines) == 1 and lines[0].endswith("un film très réussi")
    code, _, err = run(capsys, "--file", str(file), "--encoding", "klingon")
    assert code == 2 and "Unknown --encoding 'klingon'" in err


def test_a_model_path_that_is_not_a_bundle_names_the_fix(final_bundle, capsys, tmp_path):
    other = tmp_path / "README.pt"
    other.write_text("# not a model")
    code, lines, err = run(capsys, "--model", str(other), "good film")
    assert code == 2 and lines == [] and "not a model bundle saved by save_bundle" in err
    assert "weights_only=False" not in err  # torch's own advice would load arbitrary pickles


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_to_score(final_bundle, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal(""))
    code, _, err = run(capsys)
    assert code == 2 and "No review to score" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    code, _, err = run(capsys, "--file", "-")
    assert code == 2 and "No review to score" in err


def test_labels_for_binary_and_multiclass_probabilities():
    assert predict.label_rows(np.array([0.9, 0.2])) == [("positive", 0.9), ("negative", pytest.approx(0.8))]
    prob = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert predict.label_rows(prob) == [("class_1", 0.7), ("class_0", 0.5)]
    assert predict.label_rows(prob, ["low", "mid", "high"])[0] == ("mid", 0.7)
    rows = predict.format_rows(["a  b\nc", "d"], prob, ["low", "mid", "high"])
    assert rows == ["mid\t0.7000\ta b c", "low\t0.5000\td"]
