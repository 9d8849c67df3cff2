"""The linear references on made-up reviews: both kinds learn the cue words, read whole or truncated input."""
import numpy as np
import pytest
from scipy import sparse

from sentiment_lib import linear
from sentiment_lib.text import truncate

from tiny_data import tiny_prepared


@pytest.fixture(scope="module")
def prepared():
    return tiny_prepared(n_train=200, n_val=60, n_test=80)


@pytest.mark.parametrize("kind", linear.KINDS)
@pytest.mark.parametrize("max_len, suffix", [(None, ""), (12, " (12 tokens)"), ("all", " (all tokens)")])
def test_each_reference_learns_the_cue_words(prepared, kind, max_len, suffix):
    ref = linear.linear_reference(prepared, kind, max_len=max_len, truncation="head")
    assert ref.row["accuracy"] > 0.8
    assert ref.test_prob.shape == (80,) and ref.val_prob.shape == (60,)
    assert ref.row["C"] in linear.C_GRID
    assert ref.row["model"] == linear.NAMES[kind] + suffix == linear.row_name(kind, max_len)
    assert ref.max_len == max_len


def test_all_tokens_reads_every_token_of_the_encoded_review_uncut(prepared):
    texts = linear.texts_as_read(prepared, "test", linear.ALL_TOKENS, "head")
    for text, ids in zip(texts, prepared.splits["test"].ids):
        assert text.split() == [prepared.vocab.itos[i] for i in ids]
    assert max(len(t.split()) for t in texts) > 12  # longer than the 12-token reading: nothing was cut


@pytest.mark.parametrize("bad", [0, -3, "everything", 2.5, True])
def test_a_bad_reading_is_refused_before_any_fitting_naming_the_choices(prepared, bad, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the costly vectorising pass ran")

    monkeypatch.setattr(linear, "_counts", never)
    with pytest.raises(ValueError, match="number of tokens .*'all' .*None"):
        linear.linear_references(prepared, bad)
    with pytest.raises(ValueError, match="raw text of a subset is prepared.texts"):
        linear.texts_as_read(prepared, "test", None, "head")


@pytest.mark.parametrize("bad", [None, "all"])
def test_the_bundle_partner_needs_the_networks_number_of_tokens(prepared, bad):
    with pytest.raises(ValueError, match="pass the networks' max_len"):
        linear.bundle_partner(prepared, bad)


def test_on_equal_validation_accuracy_the_bundle_partner_reads_what_the_networks_read(prepared, monkeypatch):
    def fitted(prepared, kind, max_len, truncation, seed):
        return linear.LinearReference({"val_accuracy": 0.9}, np.zeros(2), np.zeros(2), {"kind": kind}, max_len)

    monkeypatch.setattr(linear, "linear_reference", fitted)
    assert linear.bundle_partner(prepared, 7).max_len == 7


def test_the_bundle_partner_is_the_nbsvm_reading_with_the_higher_validation_accuracy(prepared):
    readings = {r: linear.linear_reference(prepared, "nbsvm", r, "head", seed=0) for r in (3, linear.ALL_TOKENS)}
    chosen = linear.bundle_partner(prepared, 3, "head", seed=0)
    val = {r: ref.row["val_accuracy"] for r, ref in readings.items()}
    assert val[3] != val[linear.ALL_TOKENS]  # 3 tokens miss cue words that the whole review has
    assert chosen.max_len == max(val, key=val.get) and chosen.export is not None
    np.testing.assert_array_equal(chosen.test_prob, readings[chosen.max_len].test_prob)


def test_the_truncated_input_is_exactly_what_a_network_reads(prepared):
    texts = linear.texts_as_read(prepared, "test", 5, "tail")
    ids = prepared.splits["test"].ids[3]
    assert texts[3].split() == [prepared.vocab.itos[i] for i in truncate(ids, 5, "tail")]
    assert max(len(t.split()) for t in texts) == 5


def test_the_nb_ratio_points_at_the_class_a_feature_marks():
    features = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]]))
    r = linear.nb_ratio(features, np.array([1, 1, 0, 0]))
    assert r[0] > 0 > r[1] and r[2] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both classes"):
        linear.nb_ratio(features, np.ones(4, dtype=int))


def test_an_unknown_kind_names_the_choices(prepared):
    with pytest.raises(ValueError, match="tfidf"):
        linear.linear_reference(prepared, "svm")


def test_averaging_with_a_linear_model_chooses_the_weight_on_validation_only():
    from sentiment_lib.linear import LinearReference, average_with

    val_labels = np.array([1, 0, 1, 0])
    partner = LinearReference({}, val_prob=np.array([0.9, 0.1, 0.9, 0.1]), test_prob=np.array([0.2, 0.8]))
    network_val = np.array([0.4, 0.6, 0.4, 0.6])  # wrong on every validation review: all weight to the partner
    averaged = average_with(partner, val_labels, network_val, np.array([1.0, 0.0]))
    assert averaged.weight == 0.0 and averaged.val_accuracy == 1.0
    assert averaged.val_loss == pytest.approx(-np.log(0.9))  # the partner's alone: all the weight is on it
    np.testing.assert_allclose(averaged.test_prob, [0.2, 0.8])
    good = average_with(partner, val_labels, np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, 0.0]))
    assert good.weight == 1.0 and np.allclose(good.test_prob, [1.0, 0.0])  # the test values never chose it


@pytest.mark.parametrize("max_len", [None, 12])
def test_shared_counts_give_exactly_each_vectorizers_features(prepared, max_len):
    """One vectorising pass for both references: the same n-grams and feature values as TfidfVectorizer and a
    binary CountVectorizer fitted on their own, so the fitted models are those of separate fits."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    from sentiment_lib.text import clean_text

    if max_len is None:
        texts = {s: prepared.texts(s).tolist() for s in ("train", "test")}
        words = dict(preprocessor=clean_text)
    else:
        texts = {s: linear.texts_as_read(prepared, s, max_len, "head") for s in ("train", "test")}
        words = dict(tokenizer=str.split, token_pattern=None, lowercase=False)
    ngrams, counts = linear._counts(prepared, max_len, "head")
    labels = prepared.splits["train"].labels
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True, **words)
    expected = {"train": tfidf.fit_transform(texts["train"]), "test": tfidf.transform(texts["test"])}
    kept, got, _ = linear._features("tfidf", ngrams, counts, labels)
    assert list(kept) == list(tfidf.get_feature_names_out())
    for s in expected:
        assert abs(got[s] - expected[s]).max() < 1e-12
    binary = CountVectorizer(ngram_range=(1, 2), min_df=2, binary=True, **words)
    indicators = {"train": binary.fit_transform(texts["train"]), "test": binary.transform(texts["test"])}
    kept, got, ratio = linear._features("nbsvm", ngrams, counts, labels)
    assert list(kept) == list(binary.get_feature_names_out())
    assert np.array_equal(ratio, linear.nb_ratio(indicators["train"], labels))
    for s in indicators:
        assert abs(got[s] - indicators[s] @ sparse.diags(ratio)).max() == 0.0


def test_tfidf_drops_the_ngrams_in_nearly_every_training_review():
    counts = {"train": sparse.csr_matrix(np.array([[2, 1, 0], [1, 0, 1], [1, 1, 1], [3, 0, 1]])),
              "test": sparse.csr_matrix(np.array([[1, 1, 1]]))}
    kept, features, ratio = linear._features("tfidf", np.array(["the", "good", "bad"]), counts, np.array([1, 0, 1, 0]))
    assert list(kept) == ["good", "bad"] and ratio is None  # "the": in 4 of 4 reviews, more than 90%
    assert features["train"].shape == (4, 2) and features["test"].shape == (1, 2)


def test_both_references_from_one_pass_are_the_references_fitted_alone(prepared):
    both = linear.linear_references(prepared, 12, "head", seed=0)
    assert list(both) == ["tfidf_logreg (12 tokens)", "nbsvm (12 tokens)"]
    alone = linear.linear_reference(prepared, "nbsvm", 12, "head", seed=0)
    assert np.array_equal(both["nbsvm (12 tokens)"].test_prob, alone.test_prob)
    assert both["nbsvm (12 tokens)"].export["ngrams"] == alone.export["ngrams"]
    with pytest.raises(ValueError, match="kind must be one of"):
        linear.linear_references(prepared, kinds=("tfidf", "svm"))
