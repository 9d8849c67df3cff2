"""Word vectors pre-trained on unlabelled reviews (word2vec), to start the models' embedding layers from.

IMDB ships 50,000 *unlabelled* reviews beside the labelled ones. A model trained from scratch learns its word
vectors from the labelled training reviews alone (10,000 in the ``quick`` profile); word2vec learns them from
which words appear together, so it can use the unlabelled text too — and the test split is never read.

- :func:`pretrain_corpus` picks the texts: the ``train`` subset plus up to ``n_unlabelled`` unlabelled
  reviews (a seeded sample; unlabelled texts that also occur in the validation or test subsets are dropped);
- :func:`train_word2vec` trains gensim's ``Word2Vec`` (CBOW, negative sampling, C implementation) on their
  tokens and returns a matrix aligned with the run's vocabulary;
- :func:`init_embedding` copies that matrix into a model's ``embedding`` layer (fine-tuned afterwards);
- :func:`unlabelled_split` encodes the corpus's unlabelled reviews for virtual adversarial training.

Why gensim rather than a word2vec written here in PyTorch: its C kernels train on ~0.5 M tokens/s on one CPU
core, with subsampling of frequent words and negative sampling done right; a hand-written loop would be
slower and a source of bugs, for no gain in what the notebooks teach.

Reproducibility: gensim is deterministic for a given seed only with a single worker thread (several threads
interleave their updates by timing), so :func:`train_word2vec` uses one. Its dot products come from the BLAS
scipy links, so the vectors differ in the last bits between OpenBLAS's kernels (AVX2, AVX-512, or the portable
ones the regression snapshots force): :func:`corpus_key` keeps the two kinds of run apart in the cache.
"""
from __future__ import annotations

import io
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from torch import nn

from .batching import EncodedSplit
from .config import kernel_environment
from .text import PAD, Vocab, tokenize_many

WINDOW = 5
MIN_COUNT = 2
NEGATIVE = 5


@dataclass
class PretrainReport:
    """What :func:`train_word2vec` did (``reviews``/``tokens``: the corpus, empty reviews left out). ``coverage``: share of the vocabulary's words (PAD and UNK
    excluded) that received a trained vector; the others start from random vectors of the same scale."""

    reviews: int
    tokens: int
    epochs: int
    dim: int
    coverage: float
    seconds: float
    unlabelled: int = 0  # how many of ``reviews`` are unlabelled ones (set by :func:`pretrain_for_run`)
    cached: bool = False  # read back from :func:`pretrain_for_run`'s cache, not trained in this run
    dots_zeroed: int = 0  # dot products of exactly -1 gensim took for failures and used 0 for (_GensimNotices)

    def as_dict(self) -> dict:
        return asdict(self)


def pretrain_corpus(frame: pd.DataFrame, unlabelled: pd.Series | Sequence[str], n_unlabelled: int,
                    seed: int) -> list[str]:
    """Texts to pre-train word vectors on: the ``train`` subset of ``frame`` (a ``subset`` column, as
    :func:`sentiment_lib.splits.make_splits` gives) plus a seeded sample of ``n_unlabelled`` reviews from
    ``unlabelled`` (all of them when fewer). Unlabelled texts equal to a validation or test review are left
    out, so nothing about those subsets reaches the vectors."""
    if n_unlabelled < 0:
        raise ValueError(f"PRETRAIN_REVIEWS must be >= 0, got {n_unlabelled}.")
    held_out = set(frame.loc[frame["subset"] != "train", "text"])
    pool = pd.Series(list(unlabelled), dtype=object)
    pool = pool[~pool.isin(held_out)]
    if n_unlabelled < len(pool):
        pool = pool.sample(n=n_unlabelled, random_state=seed)
    return frame.loc[frame["subset"] == "train", "text"].tolist() + pool.tolist()


def unlabelled_split(frame: pd.DataFrame, unlabelled: pd.Series | Sequence[str], vocab: Vocab, n_unlabelled: int,
                     seed: int, remove_stopwords: bool = False, cache_dir: Path | None = None) -> EncodedSplit | None:
    """The unlabelled reviews of the pre-training corpus (:func:`pretrain_corpus`: the same seeded sample of
    ``n_unlabelled``, none equal to a validation or test review), encoded with ``vocab``: what virtual
    adversarial training reads while a classifier is fine-tuned. Labels -1 (there are none); ``None`` when the
    corpus has no unlabelled review. Tokenised as the corpus is, so the pre-training's token cache serves it."""
    texts = pretrain_corpus(frame, unlabelled, n_unlabelled, seed)
    n_train = int((frame["subset"] == "train").sum())
    if len(texts) == n_train:
        return None
    tokens = tokenize_many(texts, remove_stopwords, cache_dir=cache_dir)[n_train:]
    ids = [vocab.encode(t) for t in tokens if t]
    return EncodedSplit(ids, np.full(len(ids), -1, dtype=np.int64))


class _GensimNotices(io.TextIOBase):
    """``sys.stderr`` while gensim trains, less one notice of gensim's own, which it counts (``dropped``).

    Where scipy's BLAS returns a single-precision dot product as the C calling convention says (OpenBLAS on a
    forced core type, as in the regression snapshots' chain), gensim's word2vec takes it through
    ``our_dot_float``, which its compiled code treats as failed whenever the result is exactly -1.0: it uses 0
    instead and writes ``Exception ignored in: 'gensim.models.word2vec_inner.our_dot_float'`` to ``sys.stderr``,
    with no exception behind it, into the notebook's output. That notice says nothing a reader can act on; the
    report counts it instead (``PretrainReport.dots_zeroed``). Everything else written passes through.
    """

    NOTICE = ("Exception ignored in: ", "'gensim.models.word2vec_inner.our_dot_float'", "\n")

    def __init__(self, stream):
        super().__init__()
        self.stream, self.held, self.dropped = stream, [], 0

    def write(self, text: str) -> int:
        if text != self.NOTICE[len(self.held)]:
            self._release()  # not the notice after all: what was held goes out first, in order
        if text == self.NOTICE[len(self.held)]:
            self.held.append(text)
            if len(self.held) == len(self.NOTICE):
                self.held, self.dropped = [], self.dropped + 1
            return len(text)
        return self.stream.write(text)

    def _release(self) -> None:
        held, self.held = "".join(self.held), []
        if held:
            self.stream.write(held)

    def flush(self) -> None:
        self.stream.flush()


def train_word2vec(token_lists: Sequence[Sequence[str]], vocab: Vocab, dim: int, epochs: int, seed: int,
                   progress: bool = False) -> tuple[np.ndarray, PretrainReport]:
    """Train word2vec (CBOW) on ``token_lists`` and return ``(vectors, report)``.

    ``vectors`` is float32 (len(vocab), dim): row ``i`` is the vector of ``vocab.itos[i]``; the PAD row is
    zero; words word2vec never saw (fewer than ``MIN_COUNT`` occurrences in the corpus) get random normal
    vectors with the trained vectors' standard deviation (seeded).
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    if dim < 1 or epochs < 1:
        raise ValueError(f"word2vec needs dim >= 1 and epochs >= 1, got dim={dim}, epochs={epochs}.")
    sentences = [list(t) for t in token_lists if len(t)]
    if not sentences:
        raise ValueError("The pre-training corpus has no tokens: pass the training subset's token lists.")
    start = time.perf_counter()
    bar = None
    callbacks = []
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="word2vec", unit=" epoch", leave=False)

        class _Tick(CallbackAny2Vec):
            def on_epoch_end(self, model):  # noqa: D401 - gensim's callback signature
                bar.update(1)

        callbacks.append(_Tick())
    notices = _GensimNotices(sys.stderr)
    sys.stderr = notices  # restored whatever happens
    try:
        model = Word2Vec(sentences=sentences, vector_size=dim, window=WINDOW, min_count=MIN_COUNT, sg=0,
                         negative=NEGATIVE, epochs=epochs, seed=seed, workers=1, callbacks=callbacks)
    finally:
        notices._release()
        sys.stderr = notices.stream
    if bar is not None:
        bar.close()
    known = model.wv
    trained = known.vectors
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, float(trained.std()) if trained.size else 1.0,
                         size=(len(vocab), dim)).astype(np.float32)
    found = 0
    for i, word in enumerate(vocab.itos):
        if i >= 2 and word in known.key_to_index:
            vectors[i] = known[word]
            found += 1
    vectors[PAD] = 0.0
    report = PretrainReport(reviews=len(sentences), tokens=int(sum(len(s) for s in sentences)), epochs=epochs,
                            dim=dim, coverage=found / max(1, len(vocab) - 2),
                            seconds=round(time.perf_counter() - start, 2), dots_zeroed=notices.dropped)
    return vectors, report


def nearest_words(vectors: np.ndarray, vocab: Vocab, words: Sequence[str], k: int = 6) -> pd.DataFrame:
    """The ``k`` nearest vocabulary words (cosine similarity) to each of ``words``: a table with one row
    per word and ``k`` columns of ``"neighbour (similarity)"``. Words outside the vocabulary are skipped."""
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.maximum(norms, 1e-12)[:, None]
    rows = {}
    for word in words:
        i = vocab.stoi.get(word)
        if i is None or i < 2:
            continue
        similarity = unit @ unit[i]
        similarity[[PAD, 1, i]] = -np.inf
        best = [j for j in np.argsort(-similarity)[:k] if np.isfinite(similarity[j])]
        rows[word] = [f"{vocab.itos[j]} ({similarity[j]:.2f})" for j in best] + [""] * (k - len(best))
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"{n + 1}" for n in range(k)])


def init_embedding(model: nn.Module, vectors: np.ndarray | None) -> bool:
    """Copy ``vectors`` (V, E) into ``model.embedding`` when its shape matches; returns whether it did.

    A model with another embedding width (e.g. an Optuna trial with a smaller ``embed_dim``) keeps its
    random initialisation, so the caller can record which start a model had.
    """
    import torch

    embedding = getattr(model, "embedding", None)
    if vectors is None or embedding is None or tuple(embedding.weight.shape) != tuple(vectors.shape):
        return False
    with torch.no_grad():
        embedding.weight.copy_(torch.as_tensor(vectors, dtype=embedding.weight.dtype))
    return True


def corpus_key(settings: Sequence[Any], texts: Sequence[str], extra: bytes = b"") -> str:
    """A cache key (20 hex digits) for something trained on ``texts`` with ``settings`` (JSON-able) and any
    ``extra`` bytes (e.g. the starting vectors): word2vec and the language model are cached by it.

    A process on the portable numeric kernels (:func:`sentiment_lib.config.kernel_environment`: the regression
    snapshots' chain) gets keys of its own: what it trains differs in the last bits from what the CPU's own
    kernels train, and a snapshot run that read vectors an ordinary run had cached would differ from machine to
    machine (it did: under `make test` the classroom's graded notebooks ran first and cached theirs).
    An ordinary run's keys are what they were before."""
    import hashlib
    import json

    kernels = sorted(kernel_environment().items())
    digest = hashlib.sha256(json.dumps(list(settings) + ([kernels] if kernels else [])).encode() + extra)
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:20]


def pretrain_for_run(frame: pd.DataFrame, unlabelled: pd.Series | Sequence[str], vocab: Vocab,
                     params, cache_dir=None, progress: bool = False
                     ) -> tuple[np.ndarray | None, PretrainReport | None]:
    """The run's word vectors as notebook 02 makes them: ``(None, None)`` when ``params.embeddings`` is
    ``"random"``; else :func:`pretrain_corpus` (``params.pretrain_reviews`` unlabelled reviews), tokenised
    as the labelled ones (:func:`sentiment_lib.text.tokenize_many`, cached in ``cache_dir``), then
    :func:`train_word2vec` with ``dim=params.embed_dim``, ``epochs=params.pretrain_epochs``. With ``cache_dir``
    the vectors are kept there too (keyed by the corpus, the vocabulary and every setting), so a run killed
    after word2vec, or run again, does not train it again: the same vectors, ``report.cached`` true."""
    import json

    from .files import atomic_path
    from .text import tokenize_many

    if params.embeddings == "random":
        return None, None
    texts = pretrain_corpus(frame, unlabelled, params.pretrain_reviews, params.seed)
    cached = None
    if cache_dir is not None:
        key = corpus_key([vocab.fingerprint(), params.embed_dim, params.pretrain_epochs, params.seed,
                          params.remove_stopwords, WINDOW, MIN_COUNT, NEGATIVE], texts)
        cached = Path(cache_dir) / f"word2vec-{key}.npz"
        if cached.exists():
            with np.load(cached) as saved:
                report = PretrainReport(**{**json.loads(str(saved["report"])), "cached": True})
                return saved["vectors"], report
    tokens = tokenize_many(texts, params.remove_stopwords, cache_dir=cache_dir, progress=progress)
    vectors, report = train_word2vec(tokens, vocab, params.embed_dim, params.pretrain_epochs, params.seed, progress)
    report.unlabelled = len(texts) - int((frame["subset"] == "train").sum())
    if cached is not None:
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, vectors=vectors, report=np.array(json.dumps(report.as_dict())))
    return vectors, report


def word2vec_unavailable(prepared, embed_dim: int) -> str | None:
    """Why a model with embedding width ``embed_dim`` cannot start from the run's word vectors
    (``prepared``: a :class:`~sentiment_lib.rundir.Prepared`), as a sentence naming the fix; ``None`` when it can."""
    if prepared.embeddings is None:
        return ("This run directory has no word vectors (embeddings.npy; 02 ran with EMBEDDINGS='random'): rerun "
                "notebooks/02_preprocessing.ipynb with EMBEDDINGS='word2vec', or pass EMBEDDINGS='random'.")
    width = int(prepared.embeddings.shape[1])
    if int(embed_dim) != width:
        return (f"EMBED_DIM={embed_dim} differs from the width of the run's word vectors ({width}, 02's EMBED_DIM): "
                f"leave EMBED_DIM unset (or {width}) to start from them, or pass EMBEDDINGS='random'.")
    return None


def start_embeddings(model: nn.Module, prepared, params, pretrained: bool | None = None) -> str:
    """Initialise ``model``'s embedding layer from ``prepared.embeddings`` (``prepared``: a
    :class:`~sentiment_lib.rundir.Prepared`, ``params``: :class:`~sentiment_lib.profiles.Params`) when
    ``pretrained`` (default ``params.embeddings == "word2vec"``). Returns the start the model has: ``"word2vec"``
    or ``"random"``. Raises ``ValueError`` (see :func:`word2vec_unavailable`) when vectors are wanted but the
    run has none, or the model's embedding has another width: a model never silently starts at random."""
    wanted = params.embeddings == "word2vec" if pretrained is None else pretrained
    if not wanted:
        return "random"
    embedding = getattr(model, "embedding", None)
    if embedding is None:
        raise ValueError(f"{type(model).__name__} has no embedding layer to start from word vectors.")
    reason = word2vec_unavailable(prepared, embedding.embedding_dim)
    if reason is None and init_embedding(model, prepared.embeddings):
        return "word2vec"
    raise ValueError(reason or f"The model's embedding layer {tuple(embedding.weight.shape)} does not fit the "
                               f"run's word vectors {prepared.embeddings.shape}: build it with this run's vocabulary.")
