"""The published record on IMDB for LSTM-family models and their linear references trained on IMDB data alone
(test accuracy on the official 25,000 test reviews), to set beside a run's own numbers."""
from __future__ import annotations

from typing import Mapping

import pandas as pd

# (system, test accuracy, source); systems whose published recipe selects on the test set are left out.
RECORD = (
    ("LSTM, labelled reviews only", 0.865, "Dai & Le 2015, as tabulated by Dieng et al. 2017"),
    ("LSTM, word2vec start", 0.900, "Dai & Le 2015, as tabulated by Dieng et al. 2017"),
    ("NBSVM, words and word pairs", 0.9156, "Mesnil et al. 2014"),
    ("NBSVM, up to word triples", 0.9187, "Mesnil et al. 2014"),
    ("LSTM, language-model start (LM-LSTM)", 0.9236, "Dai & Le 2015"),
    ("LSTM, sequence-autoencoder start (SA-LSTM)", 0.9276, "Dai & Le 2015"),
    ("LSTM, language-model start + adversarial training", 0.9379, "Miyato, Dai & Goodfellow 2017"),
    ("LSTM, language-model start + virtual adversarial training", 0.9409, "Miyato, Dai & Goodfellow 2017"),
)


def beside(this_run: Mapping[str, float]) -> pd.DataFrame:
    """The published record and ``this_run`` (name → test accuracy) in one table, best first, with a column
    saying where each number comes from."""
    rows = [{"system": name, "test accuracy": accuracy, "source": source} for name, accuracy, source in RECORD]
    rows += [{"system": name, "test accuracy": float(accuracy), "source": "this run"}
             for name, accuracy in this_run.items()]
    return pd.DataFrame(rows).sort_values("test accuracy", ascending=False).set_index("system")
