"""``python -m sentiment_lib evaluate FILE``: a saved model scored on the user's own labelled CSV/TSV."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment_lib import evaluate
from sentiment_lib.__main__ import main
from sentiment_lib.bundle import load_bundle
from sentiment_lib.uncertainty import accuracy_interval
from test_predict import final_bundle, trained  # noqa: F401  (fixtures: a tiny trained bundle)

REVIEWS = ["good great superb w1 w2", "bad awful dull w3", "loved it wonderful w4 w5", "hated boring w6",
           "w7 great good", "w8 bad dull"]
LABELS = ["positive", "NEG", "1", "0", "Yes", "false"]


def run(capsys, *argv):
    code = main(["evaluate", "--profile", "smoke", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prints_accuracy_interval_prf_and_confusion_matrix(final_bundle, capsys, tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"Review": REVIEWS, "sentiment": LABELS}).to_csv(path, index=False)
    code, out, err = run(capsys, str(path))
    assert code == 0, err
    prob = load_bundle(final_bundle).predict(REVIEWS)
    labels = np.array([1, 0, 1, 0, 1, 0])
    accuracy = float(((prob >= 0.5) == labels).mean())
    low, high = accuracy_interval(int(round(accuracy * 6)), 6)
    assert f"accuracy: {accuracy:.4f}  (95% interval {low:.4f}–{high:.4f}" in out
    assert "reviews: 6 (3 positive, 3 negative)" in out and "precision:" in out and "F1:" in out
    assert "predicted negative" in out and "true positive" in out
    assert "text column 'Review', label column 'sentiment'" in out


def test_tsv_with_named_columns_and_another_encoding(final_bundle, capsys, tmp_path):
    path = tmp_path / "shop.tsv"
    frame = pd.DataFrame({"body": [r + " café" for r in REVIEWS], "ok": ["+", "-", "+", "-", "+", "-"]})
    frame.to_csv(path, sep="\t", index=False, encoding="latin-1")
    code, out, err = run(capsys, str(path), "--text-column", "body", "--label-column", "ok")
    assert code == 2 and "--encoding" in err and "not utf-8 text" in err  # é in latin-1 is not UTF-8
    code, out, err = run(capsys, str(path), "--text-column", "body", "--label-column", "ok", "--encoding", "latin-1")
    assert code == 0, err
    assert "reviews: 6" in out


@pytest.mark.parametrize("frame, option, message", [
    (pd.DataFrame({"words": ["a"], "label": ["1"]}), [], "Cannot tell which column holds the texts"),
    (pd.DataFrame({"text": ["good"], "label": ["maybe"]}), [], "neither positive nor negative"),
    (pd.DataFrame({"text": ["good", " "], "label": ["1", "0"]}), [], "Rows [3]"),
    (pd.DataFrame({"text": ["good"], "label": ["1"]}), ["--text-column", "body"], "No column 'body'"),
])
def test_bad_files_name_the_fix(final_bundle, capsys, tmp_path, frame, option, message):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code, _, err = run(capsys, str(path), *option)
    assert code == 2 and message in err


def test_a_missing_file_and_a_missing_model(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path / "nope.csv"), "--model", str(tmp_path / "none.pt"))
    assert code == 2 and "No model bundle" in err
    with pytest.raises(evaluate.EvaluateError, match="No file"):
        evaluate.read_labelled(tmp_path / "nope.csv")


def test_label_spellings():
    assert evaluate.label_values(pd.Series(["Positive", "pos", "1", "TRUE", "good", "+"])).tolist() == [1] * 6
    assert evaluate.label_values(pd.Series(["negative", "Neg", "0", "-1", "no", "bad"])).tolist() == [0] * 6


def test_an_unquoted_comma_in_every_text_is_refused_naming_the_file_lines(tmp_path):
    path = tmp_path / "commas.csv"
    path.write_text("text,label\nA wonderful film, loved it,1\nDull, far too long,0\nfine,1\nBad, bad, bad,0\n")
    with pytest.raises(evaluate.EvaluateError) as err:
        evaluate.read_labelled(path)
    message = str(err.value)
    assert "3 row(s)" in message and "lines 2 (3 fields), 3 (3 fields), 5 (4 fields)" in message
    assert "header's 2 fields" in message and 'Quote such texts ("A wonderful film, loved it",1)' in message
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('text,label\n"A wonderful film, loved it",1\n"Dull, far too long",0\n')
    assert evaluate.read_labelled(quoted).texts == ["A wonderful film, loved it", "Dull, far too long"]


def test_a_byte_order_mark_names_the_encoding_and_a_separator_can_be_given(tmp_path):
    utf16 = tmp_path / "excel.csv"
    utf16.write_bytes("text,label\nTrès bon film,1\nNul,0\n".encode("utf-16"))  # BOM FF FE
    assert evaluate.read_labelled(utf16).texts == ["Très bon film", "Nul"]
    semicolons = tmp_path / "europe.csv"
    semicolons.write_text("text;label\nGood, really good;1\nBad;0\n")
    assert evaluate.read_labelled(semicolons, separator=";").texts == ["Good, really good", "Bad"]
    with pytest.raises(evaluate.EvaluateError, match="Unknown --separator"):
        evaluate.read_labelled(semicolons, separator=":")
    plain = tmp_path / "reviews.txt"
    plain.write_text("text;label\nGood;1\nBad;0\n")
    assert evaluate.read_labelled(plain).labels.tolist() == [1, 0]  # sniffed from the header


def test_placeholders_star_ratings_and_folders_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("text,label\nGood film,1\nNaN,0\nNULL,1\n")
    with pytest.raises(evaluate.EvaluateError, match=r"Rows \[3, 4\] .* hold a placeholder"):
        evaluate.read_labelled(path)
    stars = tmp_path / "stars.csv"
    stars.write_text("text,label\nGood film,9\nAwful,1\nMeh,4\n")
    with pytest.raises(evaluate.EvaluateError, match=r"look like star ratings \(\['1', '4', '9'\]\).*rating >= 7"):
        evaluate.read_labelled(stars)
    with pytest.raises(evaluate.EvaluateError, match="is a folder"):
        evaluate.read_labelled(tmp_path)
