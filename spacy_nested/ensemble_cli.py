"""``python -m spacy_nested tune-ensemble MODEL DEV``: tune a ``nested_ensemble``'s weights and threshold on dev.

    python -m spacy_nested tune-ensemble training/ensemble corpus/dev.spacy [--rule average] [--trials 21]

The members are predicted once: the pipeline runs on the dev docs (the gold
tokens) with the ensemble and every pipe after it disabled, and each doc's
member spans are kept as `Candidates` (``codecs.ensemble``). Every setting is
then a merge of those stored spans, never a new run of the detectors:

* ``--rule average``: each member weight in {0.5, 1, 2}, normalized to sum 1,
  every ratio once (all-equal weights first), times ``--trials`` thresholds
  evenly from 0 to 1 (as ``spacy find-threshold``);
* ``--rule vote``: ``min_votes`` from 1 to the number of members (the weights
  only change the scores, not which spans are kept, so they stay as set).

Each setting is scored by strict span F1 (start, end and label equal, each
triple once, micro over the docs; ``spacy_nested.scoring``'s definition). The
first best setting in that order wins (so equal weights and then the lowest
threshold win ties). The best one is checked by running the ensemble component
itself on the stored member spans and scoring it with
``scoring.counts_per_doc``; the pipeline is written with it (config and ``cfg``)
to ``--output`` (default ``MODEL-tuned``) through a temporary folder that is
renamed into place, so a failed run leaves no partial output.
"""
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from ._cli_util import app, fail
from .codecs.ensemble import RULES, Candidates, Weights, candidates, check_config, combine
from .pipeline.ensemble import NestedEnsemble
from .scoring import counts_per_doc, prf
from .tokenizer import retokenized_as

WEIGHT_CHOICES = (0.5, 1.0, 2.0)


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


def collect(
    nlp: Language, name: str, gold: Sequence[Doc], gold_key: str, batch_size: int = 64
) -> Tuple[Candidates, numpy.ndarray, int, List[Doc]]:
    """Predict the members once on the gold docs' tokens; return the stacked candidates of all docs,
    whether each is a gold span, the number of gold spans and the predicted docs (member spans only)."""
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    after = nlp.pipe_names[nlp.pipe_names.index(name):]
    with nlp.select_pipes(disable=after):
        predicted = list(nlp.pipe((retokenized_as(g, nlp.vocab) for g in gold), batch_size=batch_size))
    parts: List[Candidates] = []
    is_gold: List[numpy.ndarray] = []
    n_gold = 0
    for gold_doc, doc in zip(gold, predicted):
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
    return stacked, numpy.concatenate(is_gold) if is_gold else numpy.zeros((0,), dtype=bool), n_gold, predicted


def tune_ensemble(
    model: Path,
    docbin: Path,
    *,
    rule: str = "average",
    n_trials: int = 21,
    output: Optional[Path] = None,
    pipe_name: Optional[str] = None,
    gold_key: Optional[str] = None,
) -> Dict[str, Any]:
    """Grid-search the ensemble's settings on `docbin` and save the pipeline with the best (module docstring).

    Returns ``best`` (the setting and its p/r/f), ``trials`` (every setting in grid order with its
    p/r/f), ``members`` (each member's own p/r/f on the same docs), ``configured`` (the f of the
    pipeline's own setting) and ``output``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    if n_trials < 2:
        raise ValueError(f"--trials must be at least 2 (thresholds evenly from 0 to 1), got {n_trials}")
    nlp = spacy.load(model)
    name = find_ensemble(nlp, pipe_name)
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    ensemble.check_members(nlp)
    configured_weights = ensemble.check_config()
    key = gold_key or ensemble.key
    gold = list(DocBin().from_disk(docbin).get_docs(nlp.vocab))
    if not gold:
        raise ValueError(f"{docbin} holds no docs")
    cands, is_gold, n_gold, predicted = collect(nlp, name, gold, key)
    cfg = ensemble.cfg

    def score(weights: Weights, rule_: str, threshold: float, min_votes: int) -> Dict[str, float]:
        keep, _ = combine(cands, weights, rule=rule_, threshold=threshold, min_votes=min_votes)
        return _f1(int((keep & is_gold).sum()), int(keep.sum()), n_gold)

    trials: List[Dict[str, Any]] = []
    if rule == "average":
        for weights in weight_grid(len(ensemble.members)):
            for threshold in numpy.linspace(0.0, 1.0, n_trials).tolist():
                setting = {"rule": rule, "weights": list(weights), "threshold": threshold, "min_votes": cfg["min_votes"]}
                trials.append({**setting, **score(weights, rule, threshold, cfg["min_votes"])})
    else:
        weights = (configured_weights / configured_weights.sum()).tolist()
        for min_votes in range(1, len(ensemble.members) + 1):
            setting = {"rule": rule, "weights": weights, "threshold": cfg["threshold"], "min_votes": min_votes}
            trials.append({**setting, **score(weights, rule, cfg["threshold"], min_votes)})
    best = max(trials, key=lambda t: t["f"])  # the first of equal ones
    members = {
        member: _f1(int((cands.found[:, i] & is_gold).sum()), int(cands.found[:, i].sum()), n_gold)
        for i, member in enumerate(ensemble.members)
    }
    configured = score(configured_weights, cfg["rule"], cfg["threshold"], cfg["min_votes"])

    settings = {k: best[k] for k in ("rule", "weights", "threshold", "min_votes")}
    check_config(ensemble.members, settings["weights"], settings["rule"], settings["threshold"], settings["min_votes"])
    nlp._pipe_configs[name].update(settings)  # what a loaded pipeline builds the component with
    ensemble.cfg.update(settings)
    # The best setting through the component itself, scored by spacy_nested.scoring: it must agree.
    merged = [ensemble(doc) for doc in predicted]
    counts = counts_per_doc(zip(gold, merged), key) if key == ensemble.key else None
    if counts is not None:
        checked = _f1(sum(counts["tp"]), sum(counts["n_pred"]), sum(counts["n_gold"]))
        if abs(checked["f"] - best["f"]) > 1e-9:
            raise RuntimeError(f"the grid's F1 {best['f']} and the component's {checked['f']} differ for {settings}")

    output = Path(output) if output is not None else Path(str(model) + "-tuned")
    _write_atomically(nlp, output)
    return {"pipe": name, "best": best, "trials": trials, "members": members, "configured": configured, "output": output}


def _write_atomically(nlp: Language, output: Path) -> None:
    """``nlp.to_disk(output)`` all or nothing: into a temporary folder beside it, then renamed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    old: Optional[Path] = None
    try:
        nlp.to_disk(tmp / "model")
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old.", dir=output.parent)) / "model"
            output.rename(old)
        (tmp / "model").rename(output)
    except BaseException:
        if old is not None and not output.exists():
            old.rename(output)  # put the previous output back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)


@app.command("tune-ensemble")
def tune_ensemble_cli(
    model: Path = typer.Argument(..., help="Pipeline folder with a nested_ensemble", exists=True, file_okay=False),
    docbin: Path = typer.Argument(..., help="Gold DocBin (dev)", exists=True, dir_okay=False),
    rule: str = typer.Option("average", "--rule", help="average: weights and threshold; vote: min_votes"),
    n_trials: int = typer.Option(21, "--trials", help="Thresholds tried, evenly from 0 to 1"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the tuned pipeline (default MODEL-tuned)"),
    pipe_name: Optional[str] = typer.Option(None, "--pipe", help="The ensemble's name, when the pipeline has several"),
    gold_key: Optional[str] = typer.Option(None, "--spans-key", help="Key of the gold spans (default: the ensemble's)"),
) -> None:
    """Tune a nested_ensemble's weights and threshold (or min_votes) on dev; predicts each member once."""
    if rule not in RULES:
        raise typer.BadParameter(f"must be one of {list(RULES)}", param_hint="--rule")
    if n_trials < 2:
        raise typer.BadParameter("at least 2", param_hint="--trials")
    try:
        found = tune_ensemble(model, docbin, rule=rule, n_trials=n_trials, output=output, pipe_name=pipe_name, gold_key=gold_key)
    except (ValueError, OSError) as err:
        fail(str(err))
    print_tuned(found)


def print_tuned(found: Dict[str, Any]) -> None:
    """What ``tune_ensemble`` found: each member's scores, the best setting, where it was saved."""
    for member, s in found["members"].items():
        msg.info(f"member {member}: P {100 * s['p']:.2f} R {100 * s['r']:.2f} F {100 * s['f']:.2f}")
    best = found["best"]
    weights = ", ".join(f"{w:.3f}" for w in best["weights"])
    setting = f"threshold {best['threshold']:.3f}" if best["rule"] == "average" else f"min_votes {best['min_votes']}"
    msg.good(
        f"best of {len(found['trials'])} settings: rule {best['rule']}, weights [{weights}], {setting}: "
        f"P {100 * best['p']:.2f} R {100 * best['r']:.2f} F {100 * best['f']:.2f} "
        f"(configured setting: F {100 * found['configured']['f']:.2f}); saved to {found['output']}"
    )
