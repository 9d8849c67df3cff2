"""Text preparation: cleaning, tokenising (memoised, parallel, cached), vocabulary, truncation."""
import json
import string
from concurrent.futures import ProcessPoolExecutor

import nltk
import numpy as np
import pytest

from sentiment_lib import text
from sentiment_lib.text import PAD, PAD_TOKEN, UNK, UNK_TOKEN, Vocab, clean_text, tokenize, tokenize_many, truncate

VARIED = [
    "Don't! I can't believe it's not butter...",
    "<br /><br />This movie &amp; that one: 10/10!!! Gonna watch it again, wanna?",
    "I'd've said cannot, 'tis o'clock; rock'n'roll y'all, ma'am.",
    'He said "wow" -- it was \'great\', wasn\'t it? (Really.)',
    "Caf&eacute; na\u00efve 3.5 stars; 1,000 times... e.g. the U.S.A. & Mr. Smith's dog's bone",
    "lets' go 'n' stuff: won't shan't gimme lemme dunno whaddya d'ye more'n 'em",
    "ALL CAPS!!!<i>italic</i>&quot;quoted&quot; &#39;single&#39; it''s",
]


# --------------------------------------------------------------------------------------------
# Cleaning and tokenising
# --------------------------------------------------------------------------------------------


def test_clean_text_removes_every_punctuation_character_not_just_the_first():
    raw = "!Wow!! Great, movie... (really)? Yes: 10/10 - #1 @home $5 ~ok~ [a] {b} |c| \\d ^e* +f= _g_ `h`"
    cleaned = clean_text(raw)
    assert not set(cleaned) & (set(string.punctuation) - {"'"})
    assert cleaned.split() == ["wow", "great", "movie", "really", "yes", "10", "10", "1", "home", "5",
                               "ok", "a", "b", "c", "d", "e", "f", "g", "h"]


def test_clean_text_drops_html_tags_and_entities_and_lowercases():
    cleaned = clean_text("Fine.<br /><br />Really &amp; truly&nbsp;<i>GOOD</i> &quot;fun&quot; &#39;x&#39;")
    assert cleaned.split() == ["fine", "really", "truly", "good", "fun", "x"]
    for leftover in ("<", ">", "br", "&", "amp", "quot", "nbsp", "#39"):
        assert leftover not in cleaned


def test_clean_text_keeps_apostrophes_inside_words_only():
    assert clean_text("'Quoted' don't rock'n'roll 'tis '").split() == ["quoted", "don't", "rock'n'roll", "tis"]


def test_tokenize_splits_contractions():
    assert tokenize("Don't!") == ["do", "n't"]
    assert tokenize("I can't, it's John's.") == ["i", "ca", "n't", "it", "'s", "john", "'s"]


@pytest.mark.parametrize("sentence", VARIED)
def test_memoised_word_by_word_tokenising_equals_nltk_on_the_whole_text(sentence):
    cleaned = clean_text(sentence)
    whole = [t for t in nltk.word_tokenize(cleaned, preserve_line=True) if any(c.isalnum() for c in t)]
    assert tokenize(sentence) == whole
    assert tokenize(sentence) == whole  # again, from the memo


def test_stopword_removal_keeps_negations():
    assert tokenize("This is not a good film, and it was never fun", remove_stopwords=True) == \
        ["not", "good", "film", "never", "fun"]
    assert {"not", "no", "never", "nor"}.isdisjoint(text.stop_words())
    assert {"the", "is", "and", "a"} <= text.stop_words()


def _short_texts(n, seed=0):
    rng = np.random.default_rng(seed)
    words = ["great", "bad", "don't", "film!", "<br />", "it's", "&amp;", "Not", "10/10", "wasn't", "ok."]
    return [" ".join(rng.choice(words, size=rng.integers(1, 6))) for _ in range(n)]


def test_tokenize_many_is_the_same_with_one_or_two_workers(monkeypatch):
    pools = []

    class SpyPool(ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(text, "ProcessPoolExecutor", SpyPool)
    texts = _short_texts(2300)  # > 2000, so two workers really use the process pool
    one = tokenize_many(texts, workers=1)
    assert pools == []
    two = tokenize_many(texts, workers=2)
    assert pools == [2]
    assert one == two == [tokenize(t) for t in texts]
    assert tokenize_many(texts[:50], remove_stopwords=True, workers=2) == \
        [tokenize(t, remove_stopwords=True) for t in texts[:50]]


def test_tokenize_many_reuses_its_disk_cache(tmp_path, monkeypatch):
    texts = _short_texts(40, seed=1)
    first = tokenize_many(texts, workers=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("tokens-*.json"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("tokeniser called despite the cache")

    monkeypatch.setattr(text, "_tokenize_chunk", boom)
    assert tokenize_many(texts, workers=1, cache_dir=tmp_path) == first
    # A changed text or setting is a different key: the tokeniser runs (and here, raises).
    with pytest.raises(AssertionError, match="despite the cache"):
        tokenize_many(texts[:-1] + ["something new"], workers=1, cache_dir=tmp_path)
    with pytest.raises(AssertionError, match="despite the cache"):
        tokenize_many(texts, remove_stopwords=True, workers=1, cache_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

CORPUS = [["b", "a", "c", "a"], ["b", "d"], ["e", "a", "b"]]  # a:3 b:3 c:1 d:1 e:1


def test_vocab_orders_by_frequency_then_alphabetically_and_starts_with_pad_unk():
    vocab = Vocab.build(CORPUS)
    assert vocab.itos == [PAD_TOKEN, UNK_TOKEN, "a", "b", "c", "d", "e"]
    assert vocab.stoi[PAD_TOKEN] == PAD == 0 and vocab.stoi[UNK_TOKEN] == UNK == 1
    assert Vocab.build(reversed([list(reversed(t)) for t in CORPUS])).itos == vocab.itos
    assert vocab.counts["a"] == 3 and vocab.counts["e"] == 1


def test_vocab_respects_min_freq_and_max_size_including_pad_and_unk():
    assert Vocab.build(CORPUS, min_freq=2).itos == [PAD_TOKEN, UNK_TOKEN, "a", "b"]
    assert Vocab.build(CORPUS, max_size=3).itos == [PAD_TOKEN, UNK_TOKEN, "a"]
    assert len(Vocab.build(CORPUS, max_size=5)) == 5
    assert Vocab.build(CORPUS, max_size=5).itos[-1] == "c"


def test_empty_vocab_names_min_freq():
    with pytest.raises(ValueError, match="MIN_FREQ=4"):
        Vocab.build(CORPUS, min_freq=4)
    with pytest.raises(ValueError, match="MIN_FREQ"):
        Vocab.build([])


def test_encode_maps_unknown_tokens_to_unk():
    vocab = Vocab.build(CORPUS)
    ids = vocab.encode(["a", "zebra", "e", PAD_TOKEN.upper()])
    assert ids.dtype == np.int32 and ids.tolist() == [2, UNK, 6, UNK]
    assert vocab.encode([]).tolist() == []
    assert vocab.decode([2, 3, 1]) == ["a", "b", UNK_TOKEN]


def test_vocab_json_round_trip(tmp_path):
    vocab = Vocab.build(CORPUS, min_freq=1)
    vocab.save(tmp_path / "vocab.json")
    json.loads((tmp_path / "vocab.json").read_text())  # plain JSON, not pickle
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded.itos == vocab.itos and loaded.counts == vocab.counts
    assert loaded.fingerprint() == vocab.fingerprint()
    assert Vocab.build(CORPUS, min_freq=2).fingerprint() != vocab.fingerprint()


def test_vocab_rejects_a_bad_token_list():
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["a", PAD_TOKEN, UNK_TOKEN])
    with pytest.raises(ValueError, match="unique"):
        Vocab([PAD_TOKEN, UNK_TOKEN, "a", "a"])


# --------------------------------------------------------------------------------------------
# Truncation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side, max_len, expected", [
    ("head", 4, [0, 1, 2, 3]),
    ("tail", 4, [6, 7, 8, 9]),
    ("head+tail", 4, [0, 7, 8, 9]),
    ("head+tail", 8, [0, 1, 4, 5, 6, 7, 8, 9]),
    ("head+tail", 3, [7, 8, 9]),
    ("head", 10, list(range(10))),
    ("tail", 12, list(range(10))),
    ("head+tail", None, list(range(10))),  # None: every token, uncut
])
def test_truncate_keeps_the_asked_for_part(side, max_len, expected):
    assert truncate(np.arange(10), max_len, side).tolist() == expected


@pytest.mark.parametrize("length", [3, 20])
def test_truncate_rejects_an_unknown_side_even_for_short_sequences(length):
    with pytest.raises(ValueError, match="'head', 'tail' or 'head\\+tail'"):
        truncate(np.arange(length), 10, "middle")
