"""``python -m spacy_nested tune-ensemble MODEL DEV``: tune a ``nested_ensemble``'s weights and threshold on dev.

    python -m spacy_nested tune-ensemble training/ensemble corpus/dev.spacy [--rule average] [--trials 21]

The members are predicted once: the pipes before the ensemble run on the dev
docs (the gold tokens), each member's model once. A member keeps only the spans
scoring at least its own threshold, so the ensemble could never bring back a span
that one member scored just below it while the others were sure of it; the
members are therefore also tried at lower thresholds (``--member-thresholds``,
default ``own 0.1 0.2 0.3``: each value is applied to all members, ``own`` keeps
each member's own). A detector decodes its stored model outputs again at each
value (``NestedSpanDetector.predict_thresholds``: the threshold acts inside its
decoder, so filtering its final spans would not be the same); any other member
applies its ``cfg["threshold"]`` in ``set_annotations``. Each doc's member
spans are kept as `Candidates` (``ensemble.merge``), and every setting is a
merge of those stored spans, never a new run of the models. For each member
threshold:

* ``--rule average``: each member weight in {0.5, 1, 2}, normalized to sum 1,
  every ratio once (all-equal weights first), times ``--trials`` thresholds
  evenly from 0 to 1 (as ``spacy find-threshold``);
* ``--rule vote``: ``min_votes`` from 1 to the number of members (the weights
  only change the scores, not which spans are kept, so they stay as set).

Each setting is scored by strict span F1 (start, end and label equal, each
triple once, micro over the docs; ``spacy_nested.evaluation.scoring``'s definition). The
first best setting in that order wins (so the members' own thresholds, equal
weights and then the lowest threshold win ties). The best one is checked by
running the ensemble component itself on the stored member spans and scoring
it with ``scoring.counts_per_doc``; the pipeline is written with it (the
ensemble's settings and the members' thresholds, config and ``cfg``)
to ``--output`` (default ``MODEL-tuned``) through a temporary folder that is
renamed into place, so a failed run leaves no partial output.
"""
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from spacy_nested.corpora.tokenizer import retokenized_as
from spacy_nested.ensemble.build import save_atomically
from spacy_nested.ensemble.component import NestedEnsemble
from spacy_nested.ensemble.merge import RULES, Candidates, Weights, candidates, check_config, combine
from spacy_nested.evaluation.scoring import counts_per_doc, prf
from spacy_nested.evaluation.thresholds import annotate_at, predict_at, run_pipe

WEIGHT_CHOICES = (0.5, 1.0, 2.0)
OWN = None  # a member setting: each member at its own threshold
# The member thresholds tried by default: each member's own, then lower ones.
MEMBER_THRESHOLDS: Tuple[Optional[float], ...] = (OWN, 0.1, 0.2, 0.3)


def weight_grid(n_members: int, choices: Sequence[float] = WEIGHT_CHOICES) -> List[Tuple[float, ...]]:
    """Each member weight in ``choices``, normalized to sum 1, each ratio once; all-equal first."""
    grid: List[Tuple[float, ...]] = [tuple([1.0 / n_members] * n_members)]
    seen = {tuple(round(w, 9) for w in grid[0])}
    for combo in itertools.product(choices, repeat=n_members):
        total = float(sum(combo))
        normalized = tuple(float(w) / total for w in combo)
        key = tuple(round(w, 9) for w in normalized)
        if key not in seen:
            seen.add(key)
            grid.append(normalized)
    return grid


def find_ensemble(nlp: Language, pipe_name: Optional[str] = None) -> str:
    """The name of the pipeline's ``nested_ensemble`` (``pipe_name`` when given)."""
    names = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "nested_ensemble"]
    if pipe_name is not None:
        if pipe_name not in names:
            raise ValueError(f"no nested_ensemble named '{pipe_name}' in the pipeline (its ensembles: {names})")
        return pipe_name
    if len(names) != 1:
        raise ValueError(f"the pipeline has {len(names)} nested_ensemble components {names}; name one with --pipe")
    return names[0]


def _f1(tp: int, n_pred: int, n_gold: int) -> Dict[str, float]:
    return prf(tp, n_pred, tp, n_gold)


@dataclass
class MemberRuns:
    """The members' predictions on the dev docs, at each member threshold tried (`collect`)."""

    docs: List[Doc]  # the dev docs' tokens, through every pipe before the ensemble
    batches: List[Tuple[int, int]]  # doc ranges predicted together
    writers: Dict[str, str]  # member key -> the pipe that writes it
    thresholds: Dict[str, List[float]]  # writer -> its threshold in each member setting
    predictions: Dict[str, List[List[Any]]]  # writer -> batch -> one prediction per member setting

    def annotate(self, nlp: Language, setting: int) -> None:
        """Write every member's spans as its pipe gives them in member setting `setting`."""
        for writer, per_batch in self.predictions.items():
            pipe = nlp.get_pipe(writer)
            for (lo, hi), predictions in zip(self.batches, per_batch):
                annotate_at(pipe, self.docs[lo:hi], predictions[setting], self.thresholds[writer][setting])


def member_settings(
    nlp: Language, writers: Dict[str, str], member_thresholds: Sequence[Optional[float]]
) -> Dict[str, List[float]]:
    """Each writer's threshold in each setting: its own (``OWN``) or the value given."""
    settings: Dict[str, List[float]] = {}
    for writer in writers.values():
        cfg = getattr(nlp.get_pipe(writer), "cfg", {})
        if "threshold" not in cfg:
            if any(t is not OWN for t in member_thresholds):
                raise ValueError(f"member pipe '{writer}' keeps no threshold in its cfg; tune with --member-thresholds own")
            settings[writer] = []
            continue
        settings[writer] = [float(cfg["threshold"]) if t is OWN else float(t) for t in member_thresholds]
    return settings


def collect(
    nlp: Language, name: str, gold: Sequence[Doc], member_thresholds: Sequence[Optional[float]], batch_size: int = 64
) -> MemberRuns:
    """Run the pipes before ensemble `name` on the gold docs' tokens, each member's model once, and keep
    each member's predictions at each of `member_thresholds` (``OWN``: its own threshold)."""
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    writers = ensemble.check_members(nlp)
    thresholds = member_settings(nlp, writers, member_thresholds)
    docs = [retokenized_as(g, nlp.vocab) for g in gold]
    batches = [(lo, min(lo + batch_size, len(docs))) for lo in range(0, len(docs), batch_size)]
    predictions: Dict[str, List[List[Any]]] = {w: [] for w in writers.values() if thresholds[w]}
    before = nlp.pipeline[: nlp.pipe_names.index(name)]
    for lo, hi in batches:
        batch = docs[lo:hi]
        for pipe_name, proc in before:
            if pipe_name in predictions:
                found = predict_at(proc, batch, thresholds[pipe_name])
                predictions[pipe_name].append(found)
                annotate_at(proc, batch, found[0], thresholds[pipe_name][0])
            else:
                batch = run_pipe(proc, batch, batch_size)
        docs[lo:hi] = batch
    return MemberRuns(docs, batches, writers, thresholds, predictions)


def gold_candidates(
    ensemble: NestedEnsemble, gold: Sequence[Doc], docs: Sequence[Doc], gold_key: str
) -> Tuple[Candidates, numpy.ndarray, int]:
    """The member spans of all `docs` stacked as candidates, whether each is a gold span, the number of gold spans."""
    parts: List[Candidates] = []
    is_gold: List[numpy.ndarray] = []
    n_gold = 0
    for gold_doc, doc in zip(gold, docs):
        labels, arrays = ensemble.member_spans(doc)
        cands = candidates(arrays, ensemble.members)
        truth = {(s.start, s.end, s.label_) for s in gold_doc.spans.get(gold_key, [])}
        n_gold += len(truth)
        parts.append(cands)
        is_gold.append(numpy.asarray([(s, e, labels[k]) in truth for s, e, k in cands.triples.tolist()], dtype=bool))
    m = len(ensemble.members)
    stacked = Candidates(
        numpy.concatenate([c.triples for c in parts]) if parts else numpy.zeros((0, 3), dtype="int64"),
        numpy.concatenate([c.scores for c in parts]) if parts else numpy.zeros((0, m)),
        numpy.concatenate([c.found for c in parts]) if parts else numpy.zeros((0, m), dtype=bool),
    )
    return stacked, numpy.concatenate(is_gold) if is_gold else numpy.zeros((0,), dtype=bool), n_gold


def tune_ensemble(
    model: Path,
    docbin: Path,
    *,
    rule: str = "average",
    n_trials: int = 21,
    member_thresholds: Sequence[Optional[float]] = MEMBER_THRESHOLDS,
    output: Optional[Path] = None,
    pipe_name: Optional[str] = None,
    gold_key: Optional[str] = None,
) -> Dict[str, Any]:
    """Grid-search the ensemble's settings on `docbin` and save the pipeline with the best (module docstring).

    Returns ``best`` (the setting and its p/r/f), ``trials`` (every setting in grid order with its
    p/r/f), ``members`` (each member's own p/r/f on the same docs, at its own threshold),
    ``configured`` (the f of the pipeline's own setting) and ``output``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    if n_trials < 2:
        raise ValueError(f"--trials must be at least 2 (thresholds evenly from 0 to 1), got {n_trials}")
    member_thresholds = check_member_thresholds(member_thresholds)
    nlp = spacy.load(model)
    name = find_ensemble(nlp, pipe_name)
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    configured_weights = ensemble.check_config()
    key = gold_key or ensemble.key
    gold = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))
    if not gold:
        raise ValueError(f"{docbin} holds no docs")
    runs = collect(nlp, name, gold, member_thresholds)
    cfg = ensemble.cfg
    own = member_thresholds.index(OWN) if OWN in member_thresholds else None

    trials: List[Dict[str, Any]] = []
    members: Dict[str, Dict[str, float]] = {}
    configured: Dict[str, float] = {}
    for setting in range(len(member_thresholds)):
        runs.annotate(nlp, setting)
        cands, is_gold, n_gold = gold_candidates(ensemble, gold, runs.docs, key)
        at = {"member_setting": setting, "member_thresholds": _member_thresholds(ensemble, runs, setting)}

        def score(weights: Weights, rule_: str, threshold: float, min_votes: int) -> Dict[str, float]:
            keep, _ = combine(cands, weights, rule=rule_, threshold=threshold, min_votes=min_votes)
            return _f1(int((keep & is_gold).sum()), int(keep.sum()), n_gold)

        if rule == "average":
            for weights in weight_grid(len(ensemble.members)):
                for threshold in numpy.linspace(0.0, 1.0, n_trials).tolist():
                    trial = {"rule": rule, "weights": list(weights), "threshold": threshold, "min_votes": cfg["min_votes"]}
                    trials.append({**at, **trial, **score(weights, rule, threshold, cfg["min_votes"])})
        else:
            weights = (configured_weights / configured_weights.sum()).tolist()
            for min_votes in range(1, len(ensemble.members) + 1):
                trial = {"rule": rule, "weights": weights, "threshold": cfg["threshold"], "min_votes": min_votes}
                trials.append({**at, **trial, **score(weights, rule, cfg["threshold"], min_votes)})
        if setting == (own if own is not None else 0):
            members = {
                member: _f1(int((cands.found[:, i] & is_gold).sum()), int(cands.found[:, i].sum()), n_gold)
                for i, member in enumerate(ensemble.members)
            }
            configured = score(configured_weights, cfg["rule"], cfg["threshold"], cfg["min_votes"])
    best = max(trials, key=lambda t: t["f"])  # the first of equal ones

    settings = {k: best[k] for k in ("rule", "weights", "threshold", "min_votes")}
    check_config(ensemble.members, settings["weights"], settings["rule"], settings["threshold"], settings["min_votes"])
    nlp._pipe_configs[name].update(settings)  # what a loaded pipeline builds the component with
    ensemble.cfg.update(settings)
    for writer, values in runs.thresholds.items():
        if values:  # as the project's tune step sets a threshold: the config (what a loaded detector applies) and cfg
            nlp._pipe_configs[writer]["threshold"] = values[best["member_setting"]]
            nlp.get_pipe(writer).cfg["threshold"] = values[best["member_setting"]]  # type: ignore[attr-defined]
    # The best setting through the component itself, scored by spacy_nested.evaluation.scoring: it must agree.
    runs.annotate(nlp, best["member_setting"])
    merged = [ensemble(doc) for doc in runs.docs]
    counts = counts_per_doc(zip(gold, merged), key) if key == ensemble.key else None
    if counts is not None:
        checked = _f1(sum(counts["tp"]), sum(counts["n_pred"]), sum(counts["n_gold"]))
        if abs(checked["f"] - best["f"]) > 1e-9:
            raise RuntimeError(f"the grid's F1 {best['f']} and the component's {checked['f']} differ for {settings}")

    output = Path(output) if output is not None else Path(str(model) + "-tuned")
    save_atomically(nlp, output)
    return {"pipe": name, "best": best, "trials": trials, "members": members, "configured": configured, "output": output}


def _member_thresholds(ensemble: NestedEnsemble, runs: MemberRuns, setting: int) -> List[Optional[float]]:
    """Each member's threshold (in member order) in member setting `setting` (None: a pipe without one)."""
    out: List[Optional[float]] = []
    for member in ensemble.members:
        values = runs.thresholds[runs.writers[member]]
        out.append(values[setting] if values else None)
    return out


def check_member_thresholds(values: Sequence[Optional[float]]) -> List[Optional[float]]:
    """The member thresholds to try: each ``OWN`` or in [0, 1], at least one, none repeated."""
    values = list(values)
    if not values:
        raise ValueError("give at least one member threshold (own: each member's own)")
    bad = [v for v in values if v is not OWN and not 0.0 <= float(v) <= 1.0]
    if bad:
        raise ValueError(f"member thresholds must be in [0, 1] (or own), got {bad}")
    if len(set(values)) != len(values):
        raise ValueError(f"member thresholds repeated in {values}")
    return values


def parse_member_thresholds(text: str) -> List[Optional[float]]:
    """``"own 0.1 0.2"`` -> ``[OWN, 0.1, 0.2]``."""
    out: List[Optional[float]] = []
    for word in text.split():
        if word == "own":
            out.append(OWN)
        else:
            try:
                out.append(float(word))
            except ValueError:
                raise ValueError(f"member threshold {word!r} is neither a number nor 'own'") from None
    return check_member_thresholds(out)






