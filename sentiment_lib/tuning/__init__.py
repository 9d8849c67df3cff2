"""Hyper-parameter search with Optuna for notebook 05, one concept a module:

- :mod:`.space`: what is searched, and what a point of the space means (a training configuration);
- :mod:`.study`: the objective, sampler and pruner, running, resuming and reading a study;
- :mod:`.storage`: where a study lives (SQLite in the run directory, or any Optuna RDB URL for several workers).

The final model made from a study is :mod:`sentiment_lib.final_model`.
"""

from . import space, storage, study  # noqa: F401,E402  (tuning.space, tuning.study, tuning.storage)
