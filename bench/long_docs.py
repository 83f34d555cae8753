"""Time and memory of one long document per pipeline: 1k, 5k and 20k tokens, with growth ratios.

    python bench/long_docs.py training/cpu/locate_label/model-best training/cpu/boundary_offset/model-best \
        training/cpu/proposer_regressor/model-best --corpus corpus/dev.spacy

The document is the dev corpus's tokens in order, repeated as needed, cut at
N tokens: once as one unbroken text (no sentence starts, so the windowed
detectors cut it into windows and locate_label_ner sees one long unit), once
with the corpus's sentence starts. Each (pipeline, N, sentences) runs in its own
process: load, warm up on a 20-token doc, then one timed call of every pipe on
the long doc. Reported: seconds, peak RSS of the process, the growth of the
peak over the warmed-up process ("added"), and the head's cost counters
(``n_scored`` and friends) of its last forward pass, i.e. of the doc's last
chunk of segments (the pipe runs the head over chunks of at most 4,096
tokens). Growth ratios compare 5k with 1k and 20k with 5k tokens: 5 and
4 for linear cost, 25 and 16 for quadratic. Output: a markdown table on stdout
and ``bench/out/long_docs.json``.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
SIZES = (1_000, 5_000, 20_000)
COUNTERS = ("n_scored", "n_classified", "n_padded_peak", "n_attended")  # the heads' cost counters


def measure(model: str, corpus: str, n_tokens: int, sentences: bool) -> Dict[str, Any]:
    """One measurement, in this process (called through ``--one``)."""
    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_nested.detectors.base import NestedSpanDetector
    from spacy_nested.evaluation.report import peak_rss_mb
    from spacy_nested.ml.bridge import get_torch_head

    nlp = spacy.load(model)
    words, starts = _corpus_tokens(list(DocBin().from_disk(corpus).get_docs(nlp.vocab)), n_tokens)
    _run(nlp, Doc(nlp.vocab, words=words[:20]))
    base = peak_rss_mb()
    doc = Doc(nlp.vocab, words=words, sent_starts=starts if sentences else None)
    began = time.perf_counter()
    doc = _run(nlp, doc)
    seconds = time.perf_counter() - began
    counters = {}
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, NestedSpanDetector):
            head = get_torch_head(pipe.model)
            counters = {k: int(getattr(head, k)) for k in COUNTERS if hasattr(head, k)}
    n_spans = sum(len(group) for group in doc.spans.values())
    peak = peak_rss_mb()
    return {"seconds": seconds, "peak_mb": peak, "added_mb": peak - base, "spans": n_spans, **counters}


def _corpus_tokens(docs: List[Any], n_tokens: int):
    words: List[str] = []
    starts: List[bool] = []
    while len(words) < n_tokens:
        for doc in docs:
            for tok in doc:
                words.append(tok.text)
                starts.append(tok.i == 0 or bool(tok.is_sent_start))
    return words[:n_tokens], starts[:n_tokens]


def _run(nlp, doc):
    for _, proc in nlp.pipeline:
        doc = proc(doc)
    return doc


def run_all(models: List[str], corpus: str) -> List[Dict[str, Any]]:
    rows = []
    for model in models:
        for sentences in (False, True):
            for n in SIZES:
                cmd = [sys.executable, __file__, "--one", model, str(n), str(int(sentences)), "--corpus", corpus]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = {"model": model, "tokens": n, "sentences": sentences, **json.loads(out.splitlines()[-1])}
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    return rows


def markdown(rows: List[Dict[str, Any]]) -> str:
    lines = [
        "| pipeline | sentences | tokens | seconds | time growth | peak RSS MB | added MB | added growth "
        "| n_scored (last forward pass) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    previous: Dict[tuple, Dict[str, Any]] = {}
    for row in rows:
        key = (row["model"], row["sentences"])
        prev = previous.get(key)
        growth = f"{row['seconds'] / prev['seconds']:.1f}×" if prev else ""
        added = f"{row['added_mb'] / prev['added_mb']:.1f}×" if prev and prev["added_mb"] > 0 else ""
        name = Path(row["model"]).parent.name if Path(row["model"]).name.startswith("model-") else Path(row["model"]).name
        lines.append(
            f"| {name} | {'yes' if row['sentences'] else 'no'} | {row['tokens']:,} | {row['seconds']:.2f} | {growth} "
            f"| {row['peak_mb']:,.0f} | {row['added_mb']:,.0f} | {added} | {row.get('n_scored', '')} |"
        )
        previous[key] = row
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*")
    parser.add_argument("--corpus", default="corpus/dev.spacy")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "TOKENS", "SENTENCES"))
    args = parser.parse_args(argv)
    if args.one:
        model, n, sentences = args.one
        print(json.dumps(measure(model, args.corpus, int(n), bool(int(sentences)))))
        return
    rows = run_all(args.models, args.corpus)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "long_docs.json").write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
