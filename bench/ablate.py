"""Short ablations: one setting changed at a time, every run stopped at the same step.

    python bench/ablate.py boundary_offset [--steps 1000] [--only NAME ...]

Each row trains the detector's CPU config with ``spacy train --training.max_steps
STEPS --training.eval_frequency STEPS`` plus the row's overrides on the bench
corpus (``bench/out/corpus``, written by ``bench/run.py``) and reads the dev
P/R/F of the last evaluation from ``spacy train``'s log. Results are cached in
``bench/out/ablate/<detector>/<row>.json``; the table goes to stdout and
``bench/out/ablate/<detector>.md``. A short run ranks settings for a model still
learning; the full-length comparison is ``bench/run.py``.
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"

COMPONENT = {
    "boundary_offset": "components.boundary_offset_ner",
    "proposer_regressor": "components.proposer_regressor_ner",
}
CONFIG = {
    "boundary_offset": "configs/genia_boundary_offset_cpu.cfg",
    "proposer_regressor": "configs/genia_proposer_regressor_cpu.cfg",
}
# row name -> (setting relative to the component, value); "as configured" has none
ROWS: Dict[str, Dict[str, Dict[str, str]]] = {
    "boundary_offset": {
        "as configured": {},
        "no distance embedding (code extra)": {"model.distance_width": "0"},
        "no CLN fusion term (code extra)": {"model.cln_fusion": "false"},
        "no label smoothing (code extra)": {"loss.label_smoothing": "0.0"},
        "loss on the upper triangle only (code extra off)": {"loss.both_triangles": "false"},
        "w/o region embedding": {"model.region_width": "0"},
        "w/o type input": {"model.type_input": "false"},
        "w/o BO (S = 0)": {"model.max_offset": "0"},
        "w/o 3D conv": {"model.conv_dilations": "[]"},
    },
    "proposer_regressor": {
        "as configured": {},
        "loss mean (code)": {"loss.reduction": '"mean"'},
        "no greedy one-to-many (code)": {"loss.one_to_many": "false"},
        "w/o backward blocks": {"model.backward": "false"},
        "w/o spatial modulation": {"model.spatial": "false"},
        "FFN update (code)": {"model.gate": '"ffn"'},
        "w/o category embedding": {"model.category_embedding": "false"},
        "w/o location iteration": {"model.location_iteration": "false"},
        "w/o logits iteration": {"model.logits_iteration": "false"},
        "no pyramid (kernels [])": {"model.kernels": "[]"},
    },
}
SCORE_LINE = re.compile(r"^\s*\d+\s+(\d+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s*$")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("detector", choices=sorted(ROWS))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    corpus = OUT / "corpus"
    if not (corpus / "train.spacy").exists():
        raise SystemExit(f"{corpus}/train.spacy missing: run bench/run.py first (it converts the corpus)")
    folder = OUT / "ablate" / args.detector
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, settings in ROWS[args.detector].items():
        if args.only and name not in args.only:
            continue
        results[name] = run_row(args.detector, name, settings, args.steps, corpus, folder)
    table = render(args.detector, results, args.steps)
    (OUT / "ablate" / f"{args.detector}.md").write_text(table, encoding="utf8")
    print(table)


def run_row(detector: str, name: str, settings: Dict[str, str], steps: int, corpus: Path, folder: Path) -> Dict:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    cached = folder / f"{slug}.{steps}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    cmd = [sys.executable, "-m", "spacy", "train", str(REPO / CONFIG[detector])]
    cmd += ["--paths.train", str(corpus / "train.spacy"), "--paths.dev", str(corpus / "dev.spacy")]
    cmd += ["--training.max_steps", str(steps), "--training.eval_frequency", str(steps)]
    for key, value in settings.items():
        cmd += [f"--{COMPONENT[detector]}.{key}", value]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    (folder / f"{slug}.{steps}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    result = {"name": name, "settings": settings, "steps": steps, **last_scores(proc.stdout)}
    cached.write_text(json.dumps(result, indent=2))
    return result


def last_scores(log: str) -> Dict[str, float]:
    """Dev P/R/F of the last evaluation row of ``spacy train``'s console table (it prints percent)."""
    rows = [m for m in (SCORE_LINE.match(line) for line in log.splitlines()) if m]
    if not rows:
        raise SystemExit("no evaluation row found in the training log")
    step, f, p, r = rows[-1].groups()
    return {"step": int(step), "f": float(f), "p": float(p), "r": float(r)}


def render(detector: str, results: Dict[str, Dict], steps: int) -> str:
    lines = [
        f"{detector}: dev P/R/F after {steps} updates ({CONFIG[detector]})",
        "",
        "| setting | changed | dev P | dev R | dev F1 |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        changed = ", ".join(f"{k} = {v}" for k, v in r["settings"].items()) or "-"
        lines.append(f"| {name} | `{changed}` | {r['p']:.2f} | {r['r']:.2f} | {r['f']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
