"""Kept dev results, so that a later session can compare against a run it cannot repeat.

    python bench/results.py keep METRICS.json cpu/span_finder-seed1 [--note "..."]
    python bench/results.py compare cpu/proposer_regressor cpu/span_finder-seed1 [more...]
    python bench/results.py list

A training here lives only as long as its session, and a paired bootstrap needs both
pipelines' per-doc counts on the same dev docs (``evaluate``'s ``per_doc``), so the README's
intervals against an earlier run could not be recomputed once its folder was gone. ``keep``
copies a metrics file of ``scripts/workflow.py evaluate`` (or ``python -m spacy_nested evaluate``) to
``bench/results/NAME.json``, compact, with a note on how it was made; ``compare`` prints
each kept result's F1 and, for every one after the first, its F1 difference to the first
with the 95% interval of the paired bootstrap (1,000 resamples, ``spacy_nested.evaluation.bootstrap``).
The counts are per dev sentence (correct, predicted and gold spans): no corpus text.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from spacy_nested.evaluation.bootstrap import Difference, paired_bootstrap

ROOT = Path(__file__).resolve().parent / "results"
KEPT = ("overall", "per_type", "per_length", "per_depth", "per_doc", "n_docs", "n_words", "words_per_s")


def path_of(name: str) -> Path:
    return ROOT / f"{name.removesuffix('.json')}.json"


def keep(metrics: Path, name: str, note: str) -> Path:
    """Write the scores of ``metrics`` (no timings beyond words/s) as the kept result ``name``."""
    data = json.loads(metrics.read_text(encoding="utf8"))
    missing = [key for key in ("overall", "per_doc") if key not in data]
    if missing:
        raise SystemExit(f"{metrics}: no {', '.join(missing)}: not a metrics file of `evaluate`")
    kept: Dict[str, Any] = {"note": note, **{key: data[key] for key in KEPT if key in data}}
    out = path_of(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(kept, separators=(",", ":")) + "\n", encoding="utf8")
    return out


def load(name: str) -> Dict[str, Any]:
    """The kept result ``name`` (``cpu/span_finder-seed1``), as ``keep`` wrote it."""
    return json.loads(path_of(name).read_text(encoding="utf8"))


def kept_names() -> List[str]:
    """The names of all kept results, sorted (``cpu/boundary_offset-seed2``, ...)."""
    return [str(path.relative_to(ROOT).with_suffix("").as_posix()) for path in sorted(ROOT.rglob("*.json"))]


def difference(name: str, reference: str) -> Difference:
    """F1(name) - F1(reference) and its paired-bootstrap 95% interval, as ``compare`` computes it (fractions)."""
    return paired_bootstrap(load(name)["per_doc"], load(reference)["per_doc"])


def compare(names: List[str]) -> List[str]:
    """One line per kept result: its F1, then (after the first) the difference to the first."""
    results = [json.loads(path_of(name).read_text(encoding="utf8")) for name in names]
    first = results[0]
    lines = []
    for name, result in zip(names, results):
        line = f"{name}: F1 {100 * result['overall']['f']:.2f}"
        if result is not first:
            diff = paired_bootstrap(result["per_doc"], first["per_doc"])
            line += f", {100 * diff.delta:+.2f} ({100 * diff.low:+.2f} to {100 * diff.high:+.2f}) vs {names[0]}"
        lines.append(line)
    return lines


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    keep_parser = commands.add_parser("keep", help="keep a metrics file as bench/results/NAME.json")
    keep_parser.add_argument("metrics", type=Path)
    keep_parser.add_argument("name", help="ENCODER/PIPELINE[-seedN][-variant]")
    keep_parser.add_argument("--note", default="", help="how it was trained and tuned")
    compare_parser = commands.add_parser("compare", help="F1 and paired-bootstrap intervals against the first")
    compare_parser.add_argument("names", nargs="+")
    commands.add_parser("list", help="the kept results and their notes")
    args = parser.parse_args(argv)
    if args.command == "keep":
        print(f"kept {keep(args.metrics, args.name, args.note)}")
    elif args.command == "compare":
        print("\n".join(compare(args.names)))
    else:
        for path in sorted(ROOT.rglob("*.json")):
            result = json.loads(path.read_text(encoding="utf8"))
            name = path.relative_to(ROOT).with_suffix("")
            print(f"{name}: F1 {100 * result['overall']['f']:.2f}  {result.get('note', '')}")


if __name__ == "__main__":
    main(sys.argv[1:])
