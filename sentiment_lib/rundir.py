"""The run directory ``artifacts/<profile>/``: the one channel through which the notebooks hand work on.

- ``prepared/``: what notebook 02 writes and notebooks 03–05 read (:func:`save_prepared`,
  :func:`load_prepared`; :func:`load_run` gives a notebook its data and its resolved parameters);
- ``metrics.json``: the run's *manifest*, which each notebook extends with what it produced — ``data``
  facts (01, 02), ``models`` with their test metrics and settings (03, 04, 05), ``bundles`` (the model files
  each notebook saved, by name), ``tuning`` (05) — read back by later notebooks (:func:`read_manifest`,
  :func:`record`). The runner copies it into ``reports/<profile>/`` for readers; no notebook reads
  ``reports/``.
- ``models/``, ``optuna.db``, ``predictions_test.csv``: paths from :mod:`sentiment_lib.config`.

``prepared/`` holds

- ``params.json``   the parameters used, the vocabulary's fingerprint, the split report;
- ``vocab.json``    the vocabulary (JSON, not pickle);
- ``encoded.npz``   per subset: token ids (flat uint16, or int32 for vocabularies over 65,536, + offsets), labels, star ratings;
                    and ``unlabelled``, the pre-training corpus's unlabelled reviews (labels -1);
- ``reviews.parquet`` the subsets' reviews (subset, split, id, rating, label, text), in the same
                    row order as the encoded arrays, for reference models and error analysis;
- ``embeddings.npy`` (when ``EMBEDDINGS="word2vec"``) float32 (len(vocab), EMBED_DIM) word vectors
                    pre-trained on the training and unlabelled reviews (:mod:`sentiment_lib.embeddings`).

Files are written atomically and ``params.json`` last, so a directory with a ``params.json`` is
complete. Nothing in ``prepared/`` depends on a training parameter: reviews are stored whole, and how much
of each a network reads (``MAX_LEN``, ``TRUNCATION``) is decided per batch.
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

from . import config, profiles
from .batching import EncodedSplit
from .data import write_atomic_parquet
from .embeddings import word2vec_unavailable
from .files import atomic_path, write_json_atomic
from .profiles import DATA_PARAMETERS, RUN_DEFAULTS, Params
from .splits import SUBSETS
from .text import PAD, UNK, Vocab, stop_words, tokenize_many

PREPARED = "prepared"
EMBEDDINGS_FILE = "embeddings.npy"
LANGUAGE_MODEL_FILE = "language_model.pt"


@dataclass
class Prepared:
    """A run's prepared data: ``splits[subset]`` for train/val/test, the vocabulary, the reviews
    table (same row order as the splits), the parameters that produced them, pre-trained word
    vectors (len(vocab), E) aligned with the vocabulary, or ``None``, the language model's weights
    (:mod:`sentiment_lib.language_model`), or ``None``, and the unlabelled reviews of the pre-training corpus,
    encoded (labels -1; :func:`~sentiment_lib.embeddings.unlabelled_split`), or ``None``."""

    params: dict[str, Any]
    vocab: Vocab
    splits: dict[str, EncodedSplit]
    reviews: pd.DataFrame
    embeddings: np.ndarray | None = None
    language_model: dict | None = None  # the pre-trained LSTM language model's weights (language_model.py)
    unlabelled: EncodedSplit | None = None  # what virtual adversarial training reads (adversarial.py)

    def texts(self, subset: str) -> pd.Series:
        return self.reviews.loc[self.reviews["subset"] == subset, "text"].reset_index(drop=True)


def prepared_dir(profile_or_dir: str | Path) -> Path:
    path = Path(profile_or_dir)
    if isinstance(profile_or_dir, str) and profile_or_dir in profiles.PROFILES:
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


def without_stopwords(prepared: Prepared) -> Prepared:
    """The same run with English stop words (:func:`sentiment_lib.text.stop_words`: negations kept) taken out
    of every encoded review, over the same vocabulary: what ``REMOVE_STOPWORDS=True`` would have given the
    networks, without preparing the data again. A review made only of stop words keeps its first token."""
    stops = stop_words()
    drop = np.array([token in stops for token in prepared.vocab.itos])
    drop[[PAD, UNK]] = False
    splits = {}
    for name, split in prepared.splits.items():
        ids = [kept if len(kept := row[~drop[row]]) else row[:1] for row in split.ids]
        splits[name] = EncodedSplit(ids, split.labels, split.ratings)
    return Prepared({**prepared.params, "remove_stopwords": True}, prepared.vocab, splits, prepared.reviews,
                    prepared.embeddings)  # no language model, no unlabelled reviews: those read stop words


def vectors_fingerprint(vectors: np.ndarray | None) -> str | None:
    """A short hash of word vectors (float32 bytes and shape), to tell one run's vectors from another's."""
    if vectors is None:
        return None
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    return hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()[:16]


def language_model_fingerprint(state: dict | None, backward: bool = False) -> str | None:
    """A short hash of a language model's weights (``None`` for none): checkpoints of LM-started trainings
    depend on it. The forward model's weights by default; ``backward``: those of the backward model kept beside
    them (``None`` when there is none), on which only a bidirectional start depends."""
    if state is None:
        return None
    from .language_model import BACKWARD

    names = sorted(name for name in state if name.startswith(BACKWARD) == backward)
    if not names:
        return None
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + state[name].float().numpy().tobytes())
    return digest.hexdigest()[:16]


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
    stored = dict(prepared.splits, **({"unlabelled": prepared.unlabelled} if prepared.unlabelled is not None else {}))
    for name, split in stored.items():
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
    lm_file = directory / LANGUAGE_MODEL_FILE
    if prepared.language_model is None:
        lm_file.unlink(missing_ok=True)
    else:
        import torch

        with atomic_path(lm_file) as tmp:
            torch.save(prepared.language_model, tmp)
    write_atomic_parquet(prepared.reviews, directory / "reviews.parquet")
    params = dict(prepared.params, vocab_fingerprint=prepared.vocab.fingerprint(),
                  vocab_len=len(prepared.vocab), vectors_fingerprint=vectors_fingerprint(prepared.embeddings),
                  lm_fingerprint=language_model_fingerprint(prepared.language_model),
                  lm_backward_fingerprint=language_model_fingerprint(prepared.language_model, backward=True))
    write_json_atomic(params, directory / "params.json")


def read_prepared_params(profile_or_dir: str | Path, expect_profile: str | None = None) -> dict[str, Any]:
    """The ``params.json`` of a run's prepared data (small: read before the arrays). Raises
    ``FileNotFoundError`` naming the notebook to run when it is missing."""
    directory = prepared_dir(profile_or_dir)
    params_file = directory / "params.json"
    if not params_file.exists():
        profile = expect_profile or (profile_or_dir if isinstance(profile_or_dir, str) else "<profile>")
        raise FileNotFoundError(
            f"No prepared data at {directory}. Run notebooks/02_preprocessing.ipynb for this profile "
            f"first: `make run PROFILE={profile}`, or papermill notebooks/02_preprocessing.ipynb "
            f"out.ipynb -p PROFILE {profile}."
        )
    return json.loads(params_file.read_text())


def load_prepared(profile_or_dir: str | Path, expect_profile: str | None = None) -> Prepared:
    """Read what ``save_prepared`` wrote. Raises ``FileNotFoundError`` naming the notebook to run
    when it is missing, and ``ValueError`` when its files do not belong together."""
    directory = prepared_dir(profile_or_dir)
    params = read_prepared_params(profile_or_dir, expect_profile)
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
        unlabelled = None
        if "unlabelled_ids" in arrays.files:  # absent in run directories written before virtual adversarial training
            flat, offsets = arrays["unlabelled_ids"].astype(np.int32), arrays["unlabelled_offsets"]
            unlabelled = EncodedSplit([flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)],
                                      arrays["unlabelled_labels"])
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
    language_model = None
    if (directory / LANGUAGE_MODEL_FILE).exists():
        import torch

        language_model = torch.load(directory / LANGUAGE_MODEL_FILE, map_location="cpu", weights_only=True)
        stored = (params.get("lm_fingerprint"), params.get("lm_backward_fingerprint"))
        if stored[0] is not None and stored != (language_model_fingerprint(language_model),
                                                language_model_fingerprint(language_model, backward=True)):
            raise ValueError(f"{LANGUAGE_MODEL_FILE} in {directory} is not the one its params.json was written with "
                             "(another run's language model?); rerun 02.")
    return Prepared(params, vocab, splits, reviews, embeddings, language_model, unlabelled)


def load_run(profile: str, **overrides: Any) -> tuple[Params, Prepared]:
    """The run's prepared data and its parameters for notebooks 03–05, resolved once.

    Data parameters (:data:`~sentiment_lib.profiles.DATA_PARAMETERS`: split, sizes, vocabulary, …) come from
    the run directory written by notebook 02, so that a ``-p VOCAB_SIZE 10000`` given to 02 carries through;
    one given here that differs from 02's is a ``ValueError`` naming the fix (rerun 02 with it), never
    silently replaced. ``overrides`` (the notebook's own papermill parameters: EPOCHS, HIDDEN_SIZE, MAX_LEN,
    TRUNCATION, …) are validated like any profile value. ``EMBEDDINGS`` and ``EMBED_DIM`` default to 02's (so
    the models start from the vectors 02 made) unless overridden; a word2vec start with an ``EMBED_DIM``
    other than the vectors' width, or without vectors, is a ``ValueError`` naming the fix, before anything
    trains. Everything is checked before the encoded arrays are read.
    """
    given = {k.lower(): v for k, v in overrides.items() if v is not None}
    try:
        stored = read_prepared_params(profiles.check_profile(profile), expect_profile=profile)
    except FileNotFoundError:
        profiles.resolve(profile, **given)  # a bad parameter is named first: it needs fixing either way
        raise
    data_values = {k: stored[k] for k in DATA_PARAMETERS if k in stored}
    run_defaults = {k: stored[k] for k in RUN_DEFAULTS if stored.get(k) is not None}
    clashes = {k: (v, data_values[k]) for k, v in given.items() if k in data_values and v != data_values[k]}
    if clashes:  # silently training with 02's value instead would report numbers for settings nobody asked for
        told = ", ".join(f"{k.upper()}={v!r} (02 used {run!r})" for k, (v, run) in clashes.items())
        flags = " ".join(f"-p {k.upper()} {v!r}" for k, (v, _) in clashes.items())
        raise ValueError(
            f"{told}: data parameters come from notebook 02's run directory. Prepare the data again with them "
            f"(python -m sentiment_lib run --profile {profile} {flags}, or --only 02 … for some notebooks), "
            "or drop them here.")
    params = profiles.resolve(profile, **{**run_defaults, **given, **data_values})
    prepared = load_prepared(profile, expect_profile=profile)
    if prepared.language_model is None and params.lm_epochs > 0:  # e.g. a run directory from before the LM
        params = params.replace(lm_epochs=0)  # what the run holds: no trial may start from a model it lacks
    from .language_model import has_backward

    if params.lm_backward and not has_backward(prepared.language_model):  # a run directory from before it
        params = params.replace(lm_backward=False)
    if params.embeddings == "word2vec":
        reason = word2vec_unavailable(prepared, params.embed_dim)
        if reason:
            raise ValueError(reason)
    return params, prepared


# --------------------------------------------------------------------------------------------
# The manifest: what each notebook of the run produced
# --------------------------------------------------------------------------------------------


def run_settings(params: Params, prepared: Prepared, ladder: bool = False) -> pd.DataFrame:
    """What a training notebook runs with, as a one-column table for its first page: the reviews per subset,
    the vocabulary, what a network reads and how it is trained; with ``ladder`` (notebook 04) also the epoch
    cap of the ladder's networks and the ε of its adversarial and its virtual adversarial training ("off": no
    such rung)."""
    rows = {f"{name} reviews": f"{len(split):,}" for name, split in prepared.splits.items()}
    rows |= {"vocabulary (words)": f"{len(prepared.vocab):,}",
             "tokens read per review": f"{params.max_len} ({params.truncation})",
             "embedding start": params.embeddings, "embedding / hidden size": f"{params.embed_dim} / {params.hidden_size}",
             "dropout": params.dropout, "learning rate": params.lr, "batch size": params.batch_size,
             "epochs (early-stopping patience)": f"up to {params.epochs} ({params.patience})", "seed": params.seed}
    if ladder:
        from .adversarial import DEFAULT_EPSILON

        rows |= {"ladder networks: epochs": f"up to {params.ladder_epochs}",
                 "ladder networks: ε of AT / VAT": f"{DEFAULT_EPSILON:g} / {f'{params.vat:g}' if params.vat > 0 else 'off'}"}
    return pd.Series(rows, name=f"profile {params.profile}").to_frame()


def read_manifest(profile: str) -> dict[str, Any]:
    """The run's manifest (``artifacts/<profile>/metrics.json``); ``{}`` before any notebook wrote to it."""
    path = config.manifest_path(profile)
    return json.loads(path.read_text()) if path.exists() else {}


def record(profile: str, section: str, values: dict[str, Any], merge: bool = True) -> None:
    """Set ``manifest[section]`` (merged key by key into what is there when ``merge``) and write it
    atomically (:func:`read_manifest` reads it back). Returns nothing, so that a notebook cell ending in a record
    shows nothing. Sections: ``data``, ``models``, ``bundles``, ``tuning``."""
    manifest = read_manifest(profile)
    current = manifest.get(section, {}) if merge else {}
    manifest[section] = {**current, **values}
    manifest["profile"] = profile
    write_json_atomic(manifest, config.manifest_path(profile))


def record_bundle(profile: str, name: str, path: Path, notebook: str) -> None:
    """Note in the manifest that ``notebook`` (e.g. ``"04"``) saved model ``name``'s bundle at ``path``."""
    record(profile, "bundles", {name: {"path": config.shown_path(path), "notebook": notebook}})


def saved_bundles(profile: str, notebook: str | None = None) -> dict[str, Path]:
    """The bundles the manifest lists (``{name: path}``), those of ``notebook`` only when given, that exist."""
    bundles = read_manifest(profile).get("bundles", {})
    found = {}
    for name, entry in bundles.items():
        path = config.model_path(profile, Path(entry["path"]).stem)
        if (notebook is None or entry.get("notebook") == notebook) and path.is_file():
            found[name] = path
    return found

