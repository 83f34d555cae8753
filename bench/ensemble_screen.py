"""Screen an ensemble of the members of several ensemble pipelines, offline, before building it (issue 16).

    OMP_NUM_THREADS=1 python bench/ensemble_screen.py MODEL... --dev DEV [--top 10]

Each MODEL is a pipeline with a ``nested_ensemble`` (from ``combine-pipelines``
or a ``shared-encoder-config`` training). Its members predict the DEV docs once,
each at its own threshold (``ensemble.tune.collect``), and the spans of all the
MODELs' members are pooled per doc as the candidates of one larger ensemble
(member ``i:key`` is MODEL ``i``'s member ``key``). Every setting of the average
rule is then scored on those stored spans by strict span F1, as
``tune-ensemble`` scores its grid: each member weight in {0, 1, 2} (0 leaves the
member out, so every subset of at least two members is tried), times 21
thresholds from 0 to 1. The table gives each member alone and the ``--top``
settings with their F1 and its difference to the best member.

It answers "would more members reach a target?" in minutes, without building
and tuning the pipeline. Its figures are tuned and scored on the same docs, so
they are optimistic: build the pipeline that wins (``combine-pipelines``) and
score it with ``bench/ensemble_members.py`` before reporting it. The members keep
only their own thresholds here (``tune-ensemble`` also tries lower ones).
"""

import argparse
import itertools
import sys
from pathlib import Path
from typing import List, Sequence

import numpy
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_nested.ensemble.component import NestedEnsemble
from spacy_nested.ensemble.merge import combine
from spacy_nested.ensemble.tune import OWN, collect, find_ensemble, gold_candidates
from spacy_nested.evaluation.scoring import prf


def add_members(model: Path, index: int, gold: Sequence[Doc], pool: Sequence[Doc]) -> List[str]:
    """Write the spans of each member of the ensemble at `model`, predicted on the `gold` docs at its own
    threshold, to the `pool` docs as ``doc.spans["<index>:<key>"]`` with their scores; return those keys."""
    nlp = spacy.load(model)
    name = find_ensemble(nlp)
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    runs = collect(nlp, name, gold, [OWN])
    runs.annotate(nlp, 0)
    keys = [f"{index}:{member}" for member in ensemble.members]
    for doc, target in zip(runs.docs, pool):
        for member, key in zip(ensemble.members, keys):
            group = doc.spans[member]
            target.spans[key] = [Span(target, span.start, span.end, label=span.label_) for span in group]
            target.spans[key].attrs["scores"] = list(group.attrs["scores"])
    return keys


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--gold-key", default="nested")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)

    vocab = spacy.blank("en").vocab
    gold = list(DocBin().from_disk(args.dev).get_docs(vocab))
    pool = [g.copy() for g in gold]  # the members' spans are added under their own keys
    names: List[str] = []
    for i, model in enumerate(args.models):
        names += add_members(model, i, gold, pool)
        print(f"{i}: {model}", flush=True)
    # One ensemble over every pooled member: tune-ensemble's own stacking of candidates and gold.
    pooled = NestedEnsemble(vocab, "screen", members=names, spans_key="screen")
    cands, is_gold, n_gold = gold_candidates(pooled, gold, pool, args.gold_key)

    def f1(keep: numpy.ndarray) -> float:
        return 100 * prf(int((keep & is_gold).sum()), int(keep.sum()), int((keep & is_gold).sum()), n_gold)["f"]

    alone = {name: f1(cands.found[:, i]) for i, name in enumerate(names)}
    best_name = max(alone, key=lambda n: alone[n])
    print("\n| member | F1 |\n|---|---|")
    for name, f in alone.items():
        print(f"| {name} | {f:.2f} |")

    trials = []
    thresholds = numpy.linspace(0.0, 1.0, 21).tolist()
    for weights in itertools.product((0.0, 1.0, 2.0), repeat=len(names)):
        if sum(1 for w in weights if w) < 2:
            continue
        for threshold in thresholds:
            keep, _ = combine(cands, weights, rule="average", threshold=threshold, min_votes=1)
            trials.append((f1(keep), weights, threshold))
    trials.sort(key=lambda t: -t[0])
    print(f"\n| weights ({', '.join(names)}) | threshold | F1 | − {best_name} |\n|---|---|---|---|")
    for f, weights, threshold in trials[: args.top]:
        print(f"| {' / '.join(f'{w:g}' for w in weights)} | {threshold:.2f} | {f:.2f} | {f - alone[best_name]:+.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
