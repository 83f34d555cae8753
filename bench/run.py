"""Side-by-side benchmark of the nested detectors and spaCy's two span baselines.

    python bench/run.py [--data ../shared/data/genia] [--epochs 6] [--only NAME ...] [--force]

For each pipeline: train its config on the same GENIA train/dev DocBins with the
same tok2vec, optimizer, batcher and epochs (skipped when a finished run left
``bench/out/<name>/TRAINED``), then measure

* dev P/R/F (strict, boundaries + type) overall and per entity length,
* words/s with ``spacy benchmark speed --batch-size 128`` on dev,
* peak RSS of a process that loads the pipeline and predicts one 1,000-token
  document (and the growth over the RSS after loading).

Each pipeline's numbers are cached in ``bench/out/<name>/bench.json``; the table
goes to ``bench/out/results.md`` and stdout.
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

PIPELINES: Dict[str, Dict] = {
    "spancat": {"config": "configs/genia_spancat_cpu.cfg", "overrides": [], "what": "spaCy spancat, ngram suggester 1-10"},
    "span_finder": {"config": "configs/genia_span_finder_cpu.cfg", "overrides": [], "what": "spaCy span_finder + spancat"},
    "locate_label": {"config": "configs/genia_locate_label_cpu.cfg", "overrides": [], "what": "locate_label_ner as configured"},
    "locate_label_soft": {
        "config": "configs/genia_locate_label_cpu.cfg",
        "overrides": ["--components.locate_label_ner.sampling.soft_examples", "true"],
        "load": {"threshold": 0.6},
        "what": "locate_label_ner with soft examples (eta 1), delta 0.6 tuned on dev",
    },
    "locate_label_paper": {
        "config": "configs/genia_locate_label_cpu.cfg",
        "overrides": [
            "--components.locate_label_ner.sampling.neg_ratio", "5.0",
            "--components.locate_label_ner.sampling.soft_examples", "true",
        ],
        "what": "locate_label_ner with the paper's negative sampling 1:5, soft examples and delta 0.45",
    },
    "locate_label_w4": {
        "config": "configs/genia_locate_label_cpu.cfg",
        "overrides": [
            "--components.locate_label_ner.seed_widths.max_width", "4",
            "--components.locate_label_ner.sampling.soft_examples", "true",
        ],
        "what": "locate_label_ner, windows 1-4: entities of 5+ tokens only through regression",
    },
    "boundary_offset": {
        "config": "configs/genia_boundary_offset_cpu.cfg",
        "overrides": [],
        "what": "boundary_offset_ner as configured (paper components + the authors' code extras)",
    },
    "boundary_offset_upper": {
        "config": "configs/genia_boundary_offset_cpu.cfg",
        "overrides": ["--components.boundary_offset_ner.loss.both_triangles", "false"],
        "what": "boundary_offset_ner, loss on the upper triangle only (the paper's valid spans)",
    },
    "boundary_offset_lowdrop": {
        "config": "configs/genia_boundary_offset_cpu.cfg",
        "overrides": [
            "--components.boundary_offset_ner.model.biaffine_dropout", "0.1",
            "--components.boundary_offset_ner.model.conv_dropout", "0.1",
        ],
        "what": "boundary_offset_ner, biaffine and 3D-conv dropout 0.1 (the code's 0.33 / 0.2 on BERT)",
    },
    "proposer_regressor": {
        "config": "configs/genia_proposer_regressor_cpu.cfg",
        "overrides": [],
        "what": "proposer_regressor_ner as configured (every paper component on)",
    },
    **{
        f"boundary_offset_{rule}": {
            "config": "configs/genia_boundary_offset_cpu.cfg",
            "overrides": [],
            "model_from": "boundary_offset",
            "load": {"decoder": {"rule": rule}},
            "what": f"boundary_offset_ner as configured, decoding rule '{rule}'",
        }
        for rule in ("centre", "all", "paper")
    },
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "genia"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--force", action="store_true", help="re-measure (training is still reused)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    train, dev = convert(Path(args.data))
    names = args.only or list(PIPELINES)
    results = {}
    for name in names:
        results[name] = run_one(name, PIPELINES[name], train, dev, args.epochs, args.force)
    table = render(results)
    (OUT / "results.md").write_text(table, encoding="utf8")
    print(table)


def convert(data: Path):
    corpus = OUT / "corpus"
    corpus.mkdir(exist_ok=True)
    train, dev = corpus / "train.spacy", corpus / "dev.spacy"
    if not train.exists():
        _run([sys.executable, "-m", "spacy_nested", "convert", str(data / "train.jsonl"), str(train)])
    if not dev.exists():
        _run([sys.executable, "-m", "spacy_nested", "convert", str(data / "dev.jsonl"), str(dev), "--split-tokens"])
    return train, dev


def run_one(name: str, spec: Dict, train: Path, dev: Path, epochs: int, force: bool) -> Dict:
    folder = OUT / name
    cached = folder / "bench.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    trained = OUT / spec.get("model_from", name)  # decoding variants reuse another entry's model
    model = trained / "model-best"
    done = trained / "TRAINED"  # model-best is written at every improving evaluation, not only at the end
    if not done.exists():
        cmd = [sys.executable, "-m", "spacy", "train", str(REPO / spec["config"]), "--output", str(trained)]
        cmd += ["--paths.train", str(train), "--paths.dev", str(dev), "--training.max_epochs", str(epochs)]
        _run(cmd + spec["overrides"], log=trained.with_suffix(".train.log"))
        done.write_text(f"{epochs} epochs\n")
    folder.mkdir(parents=True, exist_ok=True)
    result = {"name": name, "what": spec["what"], "config": spec["config"], "overrides": spec["overrides"]}
    load = json.dumps(spec.get("load", {}))
    result["switches"] = switches(model, load)
    result.update(accuracy(model, dev, load))
    result["words_per_s"] = speed(model, dev)
    result.update(memory(model, dev, load))
    cached.write_text(json.dumps(result, indent=2))
    return result


def _run(cmd: List[str], log: Optional[Path] = None) -> str:
    print("$", " ".join(cmd), flush=True)
    if log is not None:  # streamed, so a long training run can be followed with tail -f
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf8") as file:
            proc = subprocess.run(cmd, cwd=REPO, stdout=file, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\nsee {log}")
        return ""
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _python(code: str, *args: str) -> Dict:
    return json.loads(_run([sys.executable, "-c", code, *args]).strip().splitlines()[-1])


# Settings to change at load time ("load": decoding settings, as config overrides of the
# detector's component block; the settings groups are rebuilt from the config on load).
LOAD_OVERRIDES = """
from spacy.util import load_config
_names = [n for n, c in load_config(sys.argv[1] + "/config.cfg")["components"].items() if c.get("factory", "").endswith("_ner")]
nlp = spacy.load(sys.argv[1], config={"components": {n: json.loads(sys.argv[-1]) for n in _names}})
"""

SWITCHES = """
import json, sys, spacy
LOAD_OVERRIDES
cfg = {}
for name, comp in nlp.config["components"].items():
    if comp.get("factory", "").endswith("_ner"):
        model = {k: v for k, v in comp["model"].items() if not isinstance(v, dict)}
        cfg = {k: v for k, v in comp.items() if k not in ("model", "scorer", "factory")}  # as used, after "load"
        cfg["model"] = model
print(json.dumps(cfg))
"""

ACCURACY = """
import json, sys, spacy
from spacy.tokens import DocBin
from spacy_nested.evaluation.scoring import score_by_length
LOAD_OVERRIDES
gold = list(DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab))
from spacy_nested.corpora.tokenizer import retokenized_as
pred = nlp.pipe([retokenized_as(g, nlp.vocab) for g in gold], batch_size=256)
scores = score_by_length(zip(gold, pred), "nested")
long = [scores[b] for b in ("5-9", ">=10")]
n_gold = sum(s["n_gold"] for s in long)
tp = sum(s["r"] * s["n_gold"] for s in long)
print(json.dumps({"dev": scores, "recall_5plus": tp / n_gold if n_gold else 0.0, "n_gold_5plus": n_gold}))
"""

MEMORY = """
import json, resource, sys, spacy
from spacy.tokens import DocBin
LOAD_OVERRIDES
words = []
for doc in DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab):
    words.extend(t.text for t in doc)
    if len(words) >= 1000:
        break
text = " ".join(words[:1000])
nlp("warm up")
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
doc = nlp(text)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mb": peak / 1024, "rss_growth_1k_mb": (peak - after_load) / 1024, "tokens": len(doc)}))
"""


def switches(model: Path, load: str) -> Dict:
    return _python(SWITCHES.replace("LOAD_OVERRIDES", LOAD_OVERRIDES), str(model), load)


def accuracy(model: Path, dev: Path, load: str) -> Dict:
    return _python(ACCURACY.replace("LOAD_OVERRIDES", LOAD_OVERRIDES), str(model), str(dev), load)


def memory(model: Path, dev: Path, load: str) -> Dict:
    return _python(MEMORY.replace("LOAD_OVERRIDES", LOAD_OVERRIDES), str(model), str(dev), load)


def speed(model: Path, dev: Path) -> float:
    out = _run([sys.executable, "-m", "spacy", "benchmark", "speed", str(model), str(dev), "--batch-size", "128"])
    match = re.search(r"Mean:\s*([\d.,]+)\s*words/s", out)
    if not match:
        raise SystemExit(f"could not read words/s from:\n{out}")
    return float(match.group(1).replace(",", ""))


def render(results: Dict[str, Dict]) -> str:
    buckets = ("1", "2", "3", "4", "5-9", ">=10")
    head = "| pipeline | dev P | dev R | dev F1 | " + " | ".join(f"F1 len {b}" for b in buckets)
    head += " | R len>=5 | words/s | peak RSS 1k-token doc (MB) |\n"
    head += "|" + "---|" * (4 + len(buckets) + 3) + "\n"
    rows = []
    for name, r in results.items():
        dev = r["dev"]
        cells = [name, *(f"{100 * dev['all'][k]:.2f}" for k in ("p", "r", "f"))]
        cells += [f"{100 * dev[b]['f']:.1f}" for b in buckets]
        cells += [f"{100 * r['recall_5plus']:.1f}", f"{r['words_per_s']:,.0f}", f"{r['peak_rss_mb']:.0f}"]
        rows.append("| " + " | ".join(cells) + " |")
    notes = [f"- **{n}**: {r['what']}; switches: `{json.dumps(r['switches'], sort_keys=True)}`" for n, r in results.items()]
    return head + "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


if __name__ == "__main__":
    main()
