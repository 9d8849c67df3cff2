"""analysis: reading where an attention model looked, on made-up reviews and a stand-in model."""
import numpy as np
import pytest

from sentiment_lib import analysis

from tiny_data import tiny_prepared


class LooksAtTheLastWord:
    """A stand-in for an attention model's bundle: all weight on the last token, P(positive) 0.75."""

    def attention(self, text):
        tokens = text.split()
        weights = np.zeros(len(tokens))
        weights[-1] = 1.0
        return tokens, weights

    def predict(self, texts):
        return np.full(len(texts), 0.75)


def test_examples_are_the_custom_reviews_then_the_shortest_long_enough_test_reviews():
    prepared = tiny_prepared(n_test=40)
    examples = analysis.attention_examples(prepared, ["a fine film", "a dull film"], [1, 0], n_test=2, min_tokens=20)
    assert [what for _, what in examples[:2]] == ["custom review 1, meant positive", "custom review 2, meant negative"]
    lengths, labels = prepared.splits["test"].lengths, prepared.splits["test"].labels
    long_enough = sorted((n, i) for i, n in enumerate(lengths) if n >= 20)[:2]
    texts = prepared.texts("test")
    assert [text for text, _ in examples[2:]] == [texts[i] for _, i in long_enough]
    side = {1: "positive", 0: "negative"}
    assert [what for _, what in examples[2:]] == [f"test review {k}, labelled {side[int(labels[i])]}"
                                                   for k, (_, i) in enumerate(long_enough, 1)]


def test_one_label_per_custom_review():
    with pytest.raises(ValueError, match="one label"):
        analysis.attention_examples(tiny_prepared(), ["a fine film", "a dull film"], [1])


def test_the_table_names_the_heaviest_tokens_and_counts_those_above_an_even_share():
    readings = analysis.read_attention(LooksAtTheLastWord(), [("what a superb film", "custom review 1")])
    assert readings[0].tokens == ["what", "a", "superb", "film"] and readings[0].p_positive == 0.75
    row = analysis.attention_table(readings).loc["custom review 1"]
    assert row["most weight on"].startswith("“film” (1.00)")
    assert row["tokens above an even share"] == "1 of 4"
    assert row["P(positive)"] == 0.75
