"""An ensemble pipeline's members scored alone and together, each tuned the same way, with paired intervals.

    OMP_NUM_THREADS=1 python bench/ensemble_members.py MODEL DEV --output-dir OUT [--keep cpu/shared-ll-bo]

MODEL is a pipeline with a ``nested_ensemble``: one trained from a
``shared-encoder-config`` (one encoder, several heads), or one from
``combine-pipelines``/``scripts/workflow.py build-ensemble`` (separately trained members). For each
member key, the member alone is the pipeline without the other members and the
ensemble, its detector writing ``nested``; its threshold is tuned on DEV as
``scripts/workflow.py tune`` tunes every pipeline (21 values from 0 to 1, the first best
wins), it is saved as ``OUT/<key>/model-tuned`` and scored with ``evaluate``
(``OUT/<key>.json``, per-sentence counts included). The ensemble is tuned by
``tune-ensemble`` (its default grid) into ``OUT/ensemble/model-tuned`` and
scored the same way. The table gives each one's P/R/F1 and the ensemble's F1
difference to each member with the 95% interval of a paired bootstrap over the
dev sentences (1,000 resamples). ``--keep PREFIX`` also keeps every metrics file
with ``bench/results.py`` as ``PREFIX-<key>`` and ``PREFIX-ensemble``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import spacy

from spacy_nested.ensemble.component import NestedEnsemble
from spacy_nested.ensemble.tune import find_ensemble, tune_ensemble
from spacy_nested.evaluation.bootstrap import paired_bootstrap
from spacy_nested.evaluation.report import evaluate
from spacy_nested.evaluation.thresholds import dev_examples, sweep_threshold, thresholds_for

BENCH = Path(__file__).resolve().parent


def member_alone(model: Path, key: str, dev: Path, output: Path) -> Dict[str, Any]:
    """Member `key` of the ensemble at `model` as its own pipeline, threshold tuned on `dev`, saved to `output`."""
    nlp = spacy.load(model)
    name = find_ensemble(nlp)
    ensemble: NestedEnsemble = nlp.get_pipe(name)  # type: ignore[assignment]
    writers = ensemble.check_members(nlp)
    pipe = writers[key]
    others = [w for k, w in writers.items() if k != key] + [name]
    alone = spacy.load(model, exclude=others, config={"components": {pipe: {"spans_key": "nested"}}})
    scores = sweep_threshold(alone, pipe, dev_examples(alone, dev), thresholds_for(21), "spans_nested_f")
    threshold = max(scores, key=lambda t: scores[t])
    alone._pipe_configs[pipe]["threshold"] = threshold
    alone.get_pipe(pipe).cfg["threshold"] = threshold  # type: ignore[attr-defined]
    output.parent.mkdir(parents=True, exist_ok=True)
    alone.to_disk(output)
    return {"pipe": pipe, "threshold": threshold, "f": scores[threshold]}


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--keep", help="keep the metrics with bench/results.py under this prefix (cpu/NAME)")
    args = parser.parse_args(argv)
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    nlp = spacy.load(args.model)
    keys = list(nlp.get_pipe(find_ensemble(nlp)).members)  # type: ignore[attr-defined]
    del nlp
    metrics: Dict[str, Dict[str, Any]] = {}
    tuned: Dict[str, str] = {}
    for key in keys:
        found = member_alone(args.model, key, args.dev, out / key / "model-tuned")
        tuned[key] = f"{found['pipe']} threshold {found['threshold']:.2f}"
        print(f"{key}: {tuned[key]}, dev F1 {100 * found['f']:.2f}", flush=True)
        metrics[key] = evaluate(out / key / "model-tuned", args.dev)
    found = tune_ensemble(args.model, args.dev, output=out / "ensemble" / "model-tuned")
    best = found["best"]
    tuned["ensemble"] = (
        f"weights {', '.join(f'{w:.2f}' for w in best['weights'])}, threshold {best['threshold']:.2f}, "
        f"members at {best['member_thresholds']}"
    )
    print(f"ensemble: {tuned['ensemble']}, dev F1 {100 * best['f']:.2f}", flush=True)
    metrics["ensemble"] = evaluate(out / "ensemble" / "model-tuned", args.dev)
    for name, data in metrics.items():
        (out / f"{name}.json").write_text(json.dumps(data) + "\n", encoding="utf8")
    print("| pipeline | P | R | F1 | ensemble − it (95% CI) | words/s while evaluating | tuned |")
    print("|---|---|---|---|---|---|---|")
    for name, data in metrics.items():
        o = data["overall"]
        diff = "–"
        if name != "ensemble":
            d = paired_bootstrap(metrics["ensemble"]["per_doc"], data["per_doc"])
            diff = f"{100 * d.delta:+.2f} ({100 * d.low:+.2f} to {100 * d.high:+.2f})"
        print(f"| {name} | {100 * o['p']:.2f} | {100 * o['r']:.2f} | {100 * o['f']:.2f} | {diff} | "
              f"{data['words_per_s']:,.0f} | {tuned[name]} |")
    if args.keep:
        for name in metrics:
            note = f"{args.keep}: {name} of the ensemble pipeline {args.model}, tuned on dev ({tuned[name]})"
            cmd = [sys.executable, str(BENCH / "results.py"), "keep", str(out / f"{name}.json"), f"{args.keep}-{name}",
                   "--note", note]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
