"""The prepared data of a run: what notebook 02 writes and notebooks 03–05 read.

``artifacts/<profile>/prepared/`` holds

- ``params.json``   the parameters used, the vocabulary's fingerprint, the split report;
- ``vocab.json``    the vocabulary (JSON, not pickle);
- ``encoded.npz``   per subset: token ids (flat uint16, or int32 for vocabularies over 65,536, + offsets), labels, star ratings;
- ``reviews.parquet`` the subsets' reviews (subset, split, id, rating, label, text), in the same
                    row order as the encoded arrays, for reference models and error analysis;
- ``embeddings.npy`` (when ``EMBEDDINGS="word2vec"``) float32 (len(vocab), EMBED_DIM) word vectors
                    pre-trained on the training and unlabelled reviews (:mod:`sentiment_lib.embeddings`).

Files are written atomically and ``params.json`` last, so a directory with a ``params.json`` is
complete.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config
from .batching import EncodedSplit
from .data import write_atomic_parquet
from .files import atomic_path, write_json_atomic
from .splits import SUBSETS
from .text import Vocab, tokenize_many

PREPARED = "prepared"
EMBEDDINGS_FILE = "embeddings.npy"


@dataclass
class Prepared:
    """A run's prepared data: ``splits[subset]`` for train/val/test, the vocabulary, the reviews
    table (same row order as the splits), the parameters that produced them, and pre-trained word
    vectors (len(vocab), E) aligned with the vocabulary, or ``None``."""

    params: dict[str, Any]
    vocab: Vocab
    splits: dict[str, EncodedSplit]
    reviews: pd.DataFrame
    embeddings: np.ndarray | None = None

    def texts(self, subset: str) -> pd.Series:
        return self.reviews.loc[self.reviews["subset"] == subset, "text"].reset_index(drop=True)


def prepared_dir(profile_or_dir: str | Path) -> Path:
    path = Path(profile_or_dir)
    if isinstance(profile_or_dir, str) and profile_or_dir in config.PROFILES:
        path = config.run_dir(profile_or_dir)
    return path / PREPARED


def encode_reviews(frame: pd.DataFrame, vocab_size: int, min_freq: int, remove_stopwords: bool,
                   cache_dir: Path | None = None, progress: bool = False
                   ) -> tuple[Vocab, dict[str, EncodedSplit], pd.DataFrame, dict[str, Any]]:
    """Tokenise every review of ``frame`` (with a ``subset`` column), build the vocabulary from
    the ``train`` subset only, and encode each subset.

    Reviews left with no token after cleaning are dropped (and counted). Returns
    (vocab, splits, frame without dropped rows, stats with tokenising seconds and counts).
    """
    start = time.perf_counter()
    tokens = tokenize_many(frame["text"].tolist(), remove_stopwords, cache_dir=cache_dir, progress=progress)
    seconds = time.perf_counter() - start
    keep = np.fromiter((len(t) > 0 for t in tokens), dtype=bool, count=len(tokens))
    frame = frame[keep].reset_index(drop=True)
    tokens = [t for t, k in zip(tokens, keep) if k]
    subsets = frame["subset"].to_numpy()
    train_tokens = [t for t, s in zip(tokens, subsets) if s == "train"]
    vocab = Vocab.build(train_tokens, max_size=vocab_size, min_freq=min_freq)
    splits = {}
    for name in SUBSETS:
        rows = np.flatnonzero(subsets == name)
        part = frame.iloc[rows]
        ratings = part["rating"].fillna(-1).to_numpy(dtype=np.int64)
        splits[name] = EncodedSplit([vocab.encode(tokens[i]) for i in rows],
                                    part["label"].to_numpy(dtype=np.int64), ratings)
    stats = {"tokenize_seconds": round(seconds, 2), "dropped_empty": int((~keep).sum()),
             "tokens_per_review": [len(t) for t in tokens]}
    return vocab, splits, frame, stats


def vectors_fingerprint(vectors: np.ndarray | None) -> str | None:
    """A short hash of word vectors (float32 bytes and shape), to tell one run's vectors from another's."""
    if vectors is None:
        return None
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    return hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()[:16]


def save_prepared(directory: Path, prepared: Prepared) -> None:
    """Write a run's prepared data (see module docstring); ``params.json`` goes last."""
    if prepared.embeddings is not None and (prepared.embeddings.ndim != 2
                                            or prepared.embeddings.shape[0] != len(prepared.vocab)):
        raise ValueError(f"The embeddings have shape {prepared.embeddings.shape} for a vocabulary of "
                         f"{len(prepared.vocab)}: train them with this run's vocabulary (len(vocab), E).")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "params.json").unlink(missing_ok=True)  # incomplete until rewritten
    arrays = {}
    id_type = np.uint16 if len(prepared.vocab) <= np.iinfo(np.uint16).max + 1 else np.int32  # half the size
    for name, split in prepared.splits.items():
        lengths = split.lengths
        arrays[f"{name}_ids"] = (np.concatenate(split.ids) if len(split) else np.zeros(0)).astype(id_type)
        arrays[f"{name}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays[f"{name}_labels"] = split.labels
        arrays[f"{name}_ratings"] = split.ratings
    with atomic_path(directory / "encoded.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    prepared.vocab.save(directory / "vocab.json")
    vectors_file = directory / EMBEDDINGS_FILE
    if prepared.embeddings is None:
        vectors_file.unlink(missing_ok=True)
    else:
        with atomic_path(vectors_file) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, prepared.embeddings.astype(np.float32))
    write_atomic_parquet(prepared.reviews, directory / "reviews.parquet")
    params = dict(prepared.params, vocab_fingerprint=prepared.vocab.fingerprint(),
                  vocab_len=len(prepared.vocab), vectors_fingerprint=vectors_fingerprint(prepared.embeddings))
    write_json_atomic(params, directory / "params.json")


def load_prepared(profile_or_dir: str | Path, expect_profile: str | None = None) -> Prepared:
    """Read what ``save_prepared`` wrote. Raises ``FileNotFoundError`` naming the notebook to run
    when it is missing, and ``ValueError`` when its files do not belong together."""
    directory = prepared_dir(profile_or_dir)
    params_file = directory / "params.json"
    if not params_file.exists():
        profile = expect_profile or (profile_or_dir if isinstance(profile_or_dir, str) else "<profile>")
        raise FileNotFoundError(
            f"No prepared data at {directory}. Run notebooks/02_preprocessing.ipynb for this profile "
            f"first: `make run PROFILE={profile}`, or papermill notebooks/02_preprocessing.ipynb "
            f"out.ipynb -p PROFILE {profile}."
        )
    params = json.loads(params_file.read_text())
    if expect_profile is not None and params.get("profile") != expect_profile:
        raise ValueError(
            f"The prepared data at {directory} was made for profile {params.get('profile')!r}, not "
            f"{expect_profile!r}. Rerun notebooks/02_preprocessing.ipynb with -p PROFILE {expect_profile}."
        )
    vocab = Vocab.load(directory / "vocab.json")
    if vocab.fingerprint() != params.get("vocab_fingerprint"):
        raise ValueError(
            f"vocab.json in {directory} does not match its params.json (another run's vocabulary?). "
            f"Rerun notebooks/02_preprocessing.ipynb to rebuild the run directory."
        )
    with np.load(directory / "encoded.npz") as arrays:
        splits = {}
        for name in SUBSETS:
            flat, offsets = arrays[f"{name}_ids"], arrays[f"{name}_offsets"]
            if len(flat) and int(flat.max()) >= len(vocab):
                raise ValueError(f"Token ids in {directory}/encoded.npz exceed the vocabulary; rerun 02.")
            flat = flat.astype(np.int32)
            ids = [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            splits[name] = EncodedSplit(ids, arrays[f"{name}_labels"], arrays[f"{name}_ratings"])
    reviews = pd.read_parquet(directory / "reviews.parquet")
    if len(reviews) != sum(len(s) for s in splits.values()):
        raise ValueError(f"reviews.parquet and encoded.npz in {directory} disagree; rerun 02.")
    embeddings = None
    if (directory / EMBEDDINGS_FILE).exists():
        embeddings = np.load(directory / EMBEDDINGS_FILE)
        stored = params.get("vectors_fingerprint")  # absent in run directories written before it existed
        if (embeddings.ndim != 2 or embeddings.shape[0] != len(vocab)
                or (stored is not None and stored != vectors_fingerprint(embeddings))):
            raise ValueError(f"{EMBEDDINGS_FILE} in {directory} (shape {embeddings.shape}) is not the one its "
                             f"params.json was written with (another run's vectors?); rerun 02.")
    return Prepared(params, vocab, splits, reviews, embeddings)
