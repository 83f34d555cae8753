"""Words/s of ``python -m spacy_nested annotate`` for several pipelines, in one sitting (issue 15).

    OMP_NUM_THREADS=1 python bench/annotate_speed.py --dev /tmp/genia/dev.spacy \\
        --models locate_label=training/genia/cpu/locate_label/model-best \\
                 proposer_regressor=training/genia/cpu/proposer_regressor/model-best \\
                 span_finder=training/genia/cpu/span_finder/model-best \\
        --baseline span_finder --n-process 1 2 --dask

The input is the text of the GENIA dev docs, repeated until it holds ``--words``
words (100,000 by default), as JSONL with an ``id`` field. Each pipeline runs the
``annotate`` command as a user would (a fresh process, JSONL out), once per
setting: ``--n-process`` values on this machine and, with ``--dask``, a local
Dask cluster of the largest of them. A run's time is the one the command reports
(wall clock from after the pipeline is loaded in the driver to the last record
written) minus the one it reports for a one-record input (starting worker
processes or a cluster, and the cluster workers loading the pipeline), so the
words/s are those of the steady state. Not the process's whole wall clock: loading
a pipeline takes 12 to 20 s here and varies by seconds, as long as 100,000 words
take span_finder + spancat; subtracting it made that pipeline look twice as fast
as it is. Ratios are to
``--baseline`` with the same setting; the settings of one pipeline run back to
back, the pipelines one after another, so compare ratios within one call.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import spacy
from spacy.tokens import DocBin


def write_input(dev: Path, words: int, target: Path) -> int:
    """GENIA dev texts repeated to at least ``words`` words as JSONL; returns the word count."""
    docs = list(DocBin().from_disk(dev).get_docs(spacy.blank("en").vocab))
    total, n = 0, 0
    with target.open("w", encoding="utf8") as f:
        while total < words:
            for doc in docs:
                f.write(json.dumps({"id": n, "text": doc.text}) + "\n")
                total, n = total + len(doc), n + 1
                if total >= words:
                    break
    return total


def run(model: str, spans_key: str, source: Path, setting: Tuple[str, int], work: Path) -> float:
    """Wall seconds of one ``annotate`` command, as it reports them (after loading the pipeline)."""
    engine, n_process = setting
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "spacy_nested", "annotate", model, str(source), str(out), "--spans-key", spans_key]
    cmd += ["--n-process", str(n_process), "--batch-size", "128", "--engine", engine]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    found = re.search(r"Annotated \d+ docs into .* in ([0-9.]+) s", done.stdout)
    if found is None:
        raise SystemExit(f"annotate did not report its time: {done.stdout!r}")
    return float(found.group(1))


def parse_model(text: str) -> Tuple[str, str, str]:
    """``NAME=PATH`` or ``NAME=PATH@SPANS_KEY`` (default key ``nested``)."""
    name, _, rest = text.partition("=")
    path, _, key = rest.partition("@")
    if not name or not path:
        raise SystemExit(f"--models: expected NAME=PATH[@SPANS_KEY], got {text!r}")
    return name, path, key or "nested"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--models", nargs="+", required=True, help="NAME=PATH[@SPANS_KEY]")
    parser.add_argument("--baseline", help="NAME of the pipeline the ratios are taken to")
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--n-process", nargs="+", type=int, default=[1])
    parser.add_argument("--dask", action="store_true", help="also on a local Dask cluster")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    models = [parse_model(m) for m in args.models]
    settings = [("local", n) for n in args.n_process] + ([("dask", max(args.n_process))] if args.dask else [])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        words = write_input(args.dev, args.words, work / "input.jsonl")
        (work / "one.jsonl").write_text((work / "input.jsonl").open(encoding="utf8").readline(), encoding="utf8")
        speeds: Dict[str, Dict[str, float]] = {}
        for name, path, key in models:
            for setting in settings:
                label = f"{setting[0]} x{setting[1]}"
                seconds = run(path, key, work / "input.jsonl", setting, work) - run(path, key, work / "one.jsonl", setting, work)
                speeds.setdefault(name, {})[label] = words / max(seconds, 1e-9)
                print(f"{name}\t{label}\t{speeds[name][label]:,.0f} words/s", flush=True)
    labels = [f"{engine} x{n}" for engine, n in settings]
    print(f"\n{words:,} words\n| pipeline | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, by_setting in speeds.items():
        cells = []
        for label in labels:
            cell = f"{by_setting[label]:,.0f}"
            if args.baseline in speeds:
                cell += f" ({by_setting[label] / speeds[args.baseline][label]:.2f}×)"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"words": words, "baseline": args.baseline, "words_per_s": speeds}, indent=2))


if __name__ == "__main__":
    main()
