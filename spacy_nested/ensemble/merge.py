"""Merging the scored spans of several nested detectors (numpy only; ``nested_ensemble``).

Each member gives, for one doc, ``(n_i, 3)`` integer rows ``(start, end, label)``
and ``(n_i,)`` scores in [0, 1]. The label is an index that the caller assigns
consistently across the members of one doc (the component uses the position in
the sorted label strings). The choices, stated once:

* **Candidates** are the distinct ``(start, end, label)`` triples any member
  predicts. Two spans agree only when all three are equal (strict, as the
  scorer counts them); overlapping or nested spans are separate candidates.
* **A span missing from a member counts as score 0** for that member (and as no
  vote). A member that predicts the same triple twice counts once, with its
  highest score.
* ``"average"``: the combined score is ``sum_i w_i * s_i / sum_i w_i`` over all
  members; a candidate is kept when that score is ``>= threshold`` (a tie with
  the threshold keeps it).
* ``"vote"``: a candidate is kept when at least ``min_votes`` members predict it
  (each member one unweighted vote; the threshold is not used). Its score is the
  same weighted average, so it is comparable across rules.
* **Output order**: sorted by start, then end, then label index (the triples'
  lexicographic order), whatever order the members gave.
* Member scores must be finite and within [0, 1] (a rounding excess of up to
  ``SCORE_TOLERANCE`` is clipped); the combined score is then in [0, 1].

``check_config`` is the one check of the settings (members, rule, weights,
threshold, min_votes), used by the component's constructor and ``initialize``.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy

RULES = ("average", "vote")
SCORE_TOLERANCE = 1e-4

MemberSpans = Tuple[numpy.ndarray, numpy.ndarray]  # ((n, 3) start, end, label), (n,) scores
Weights = Union[Sequence[float], numpy.ndarray]


def check_config(
    members: Sequence[str],
    weights: Optional[Sequence[float]],
    rule: str,
    threshold: float,
    min_votes: int,
) -> numpy.ndarray:
    """Raise ValueError naming what is wrong with the settings; return the weights (float64, one per member)."""
    members = list(members)
    if len(members) < 2:
        raise ValueError(
            f"nested_ensemble needs at least 2 members (span keys of earlier detectors), got {members}"
        )
    if not all(isinstance(m, str) and m for m in members):
        raise ValueError(f"nested_ensemble members must be non-empty span keys (strings), got {members}")
    repeated = sorted({m for m in members if members.count(m) > 1})
    if repeated:
        raise ValueError(f"nested_ensemble members must differ: {repeated} listed more than once in {members}")
    if rule not in RULES:
        raise ValueError(f"nested_ensemble rule must be one of {list(RULES)}, got {rule!r}")
    if weights is None:
        w = numpy.ones(len(members), dtype="float64")
    else:
        w = numpy.asarray(list(weights), dtype="float64")
        if w.ndim != 1 or len(w) != len(members):
            raise ValueError(
                f"nested_ensemble weights must give one weight per member: {len(members)} members "
                f"{members}, {w.size} weights {list(weights)}"
            )
        if not numpy.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"nested_ensemble weights must be finite and >= 0, got {list(weights)}")
        if w.sum() <= 0:
            raise ValueError(f"nested_ensemble weights are all zero ({list(weights)}): at least one must be > 0")
    if not (0.0 <= float(threshold) <= 1.0):
        raise ValueError(f"nested_ensemble threshold must be within [0, 1], got {threshold}")
    if isinstance(min_votes, bool) or int(min_votes) != min_votes or not 1 <= min_votes <= len(members):
        raise ValueError(
            f"nested_ensemble min_votes must be an integer from 1 to the number of members ({len(members)}), got {min_votes}"
        )
    return w


@dataclass
class Candidates:
    """The distinct triples of one doc (or of several docs stacked) and each member's view of them.

    ``triples`` (n, 3) sorted lexicographically; ``scores`` (n, m) each member's score, 0
    where it did not predict the triple; ``found`` (n, m) whether it did.
    """

    triples: numpy.ndarray
    scores: numpy.ndarray
    found: numpy.ndarray

    def __len__(self) -> int:
        return int(self.triples.shape[0])


def candidates(members: Sequence[MemberSpans], names: Optional[Sequence[str]] = None) -> Candidates:
    """Collect the members' spans of one doc into `Candidates` (``names`` only label errors)."""
    names = list(names) if names is not None else [f"#{i}" for i in range(len(members))]
    rows: List[numpy.ndarray] = []
    values: List[numpy.ndarray] = []
    owner: List[numpy.ndarray] = []
    for i, (spans, scores) in enumerate(members):
        spans = numpy.asarray(spans, dtype="int64").reshape(-1, 3)
        scores = numpy.asarray(scores, dtype="float64").reshape(-1)
        if len(scores) != len(spans):
            raise ValueError(f"member '{names[i]}': {len(spans)} spans but {len(scores)} scores")
        bad = ~numpy.isfinite(scores) | (scores < -SCORE_TOLERANCE) | (scores > 1 + SCORE_TOLERANCE)
        if bad.any():
            raise ValueError(f"member '{names[i]}': span scores must lie in [0, 1], got {scores[bad][:5].tolist()}")
        rows.append(spans)
        values.append(numpy.clip(scores, 0.0, 1.0))
        owner.append(numpy.full(len(spans), i, dtype="int64"))
    m = len(members)
    if not rows or sum(len(r) for r in rows) == 0:
        return Candidates(numpy.zeros((0, 3), dtype="int64"), numpy.zeros((0, m)), numpy.zeros((0, m), dtype=bool))
    all_rows = numpy.concatenate(rows)
    triples, inverse = numpy.unique(all_rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    who = numpy.concatenate(owner)
    scores_m = numpy.zeros((len(triples), m), dtype="float64")
    numpy.maximum.at(scores_m, (inverse, who), numpy.concatenate(values))  # a repeated triple keeps its best score
    found = numpy.zeros((len(triples), m), dtype=bool)
    found[inverse, who] = True
    return Candidates(triples.astype("int64"), scores_m, found)


def combine(
    cands: Candidates, weights: Weights, *, rule: str, threshold: float, min_votes: int
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """``(keep, combined)``: which candidates the rule keeps (bool (n,)) and every candidate's combined score."""
    w = numpy.asarray(weights, dtype="float64")
    # Column by column (not a matrix product), so that a candidate's score is the same to the last
    # bit whether its doc is merged alone or stacked with others (as tune-ensemble does).
    total = numpy.zeros(len(cands), dtype="float64")
    for i in range(len(w)):
        total += cands.scores[:, i] * w[i]
    combined = numpy.clip(total / w.sum(), 0.0, 1.0)  # only float rounding can leave [0, 1] here
    if rule == "average":
        keep = combined >= threshold
    elif rule == "vote":
        keep = cands.found.sum(axis=1) >= min_votes
    else:
        raise ValueError(f"nested_ensemble rule must be one of {list(RULES)}, got {rule!r}")
    return keep, combined


def merge(
    members: Sequence[MemberSpans],
    weights: Weights,
    *,
    rule: str,
    threshold: float,
    min_votes: int,
    names: Optional[Sequence[str]] = None,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The merged spans of one doc: ``(k, 3)`` triples sorted by (start, end, label) and ``(k,)`` scores."""
    if len(weights) != len(members):
        raise ValueError(f"{len(members)} members but {len(weights)} weights")
    cands = candidates(members, names)
    keep, combined = combine(cands, weights, rule=rule, threshold=threshold, min_votes=min_votes)
    return cands.triples[keep], combined[keep]
