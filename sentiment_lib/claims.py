"""Claims checked against their numbers: what a page says, with the evidence and a visible verdict.

A notebook's prose is written by a person and does not change with the run; a sentence that depends on the
run's numbers ("adversarial training helps", "the padded read stays near chance") is written once as a
:class:`Claim` beside the computed test that decides it. :func:`check` shows them as a table — ✓ when the
numbers of *this* run support the sentence, ✗ with the same evidence when they do not — so a rerun with other
parameters or on another machine can never show a contradicted sentence as true. :func:`record` stores the
verdicts in the run's manifest (``claims``: notebook → list of ``{claim, holds, evidence}``), where the
report's index counts them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import pandas as pd

HOLDS, FAILS = "✓ holds", "✗ does not hold"


@dataclass(frozen=True)
class Claim:
    """One sentence of the report and its test: ``claim`` (the sentence as written), ``holds`` (the test,
    computed from the run's numbers) and ``evidence`` (those numbers, as a short line)."""

    claim: str
    holds: bool
    evidence: str

    def __post_init__(self) -> None:
        if not isinstance(self.claim, str) or not self.claim.strip():
            raise ValueError("A claim needs its sentence: Claim('what the page says', holds, 'the numbers').")
        object.__setattr__(self, "holds", bool(self.holds))  # numpy bools from comparisons


def check(claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims as a table (one row each, numbered from 1): ``verdict`` (✓ holds / ✗ does not hold),
    ``claim`` and ``evidence``."""
    if not claims:
        raise ValueError("No claims to check: pass at least one Claim.")
    frame = pd.DataFrame({"verdict": [HOLDS if c.holds else FAILS for c in claims],
                          "claim": [c.claim for c in claims], "evidence": [c.evidence for c in claims]})
    frame.index = pd.RangeIndex(1, len(claims) + 1)
    return frame


def record(profile: str, notebook: str, claims: Sequence[Claim]) -> None:
    """Store the claims' verdicts in the run's manifest under ``claims[notebook]`` (replacing that notebook's)."""
    from . import rundir

    rundir.record(profile, "claims", {notebook: [asdict(c) for c in claims]})


def summary(manifest_claims: dict[str, list[dict]]) -> tuple[int, int]:
    """``(holding, failing)`` over every notebook's recorded claims (the manifest's ``claims`` entry)."""
    rows = [row for rows in manifest_claims.values() for row in rows]
    holding = sum(1 for row in rows if row.get("holds"))
    return holding, len(rows) - holding
