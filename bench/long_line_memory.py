"""Peak memory of one long line of raw text through each detector with its ``add_pipe`` defaults.

    OMP_NUM_THREADS=1 python bench/long_line_memory.py --chars 500000 5000000

For each factory (default: all three), in a fresh process each (one thread):
blank English + ``nlp.add_pipe(factory)`` with the factory's default config
(its inline CPU tok2vec and default segmenter), initialized and trained for
``--updates`` updates (default: 40, 150 and 60, in the order above; boundary_offset's
zero-initialised conditional layer norm starts slowly) on the first ``--sentences``
GENIA train sentences (``../shared/data/genia/train.jsonl``), so that the model
predicts sparsely as a trained one does. Then one line of ``--chars`` characters is built from the
texts of ``../shared/data/unlabeled/pubmed_sentences.jsonl`` joined by spaces
(no sentence starts: the blank pipeline sets none), ``nlp.max_length`` is raised
above it, and ``nlp(text)`` runs once. Before the call the process's peak RSS is
reset (``/proc/self/clear_refs``, which resets ``ru_maxrss`` too), so the peak
reported (``ru_maxrss`` after the call) is that of the call, over a process that
already holds the trained pipeline and the text ("baseline": the RSS just
before the call). Reported per (factory, chars): tokens, baseline and peak RSS
(MB), seconds of the call, spans found.

A run that would exceed ``--rss-limit-mb`` above the baseline is stopped (an
address-space limit set just before the call, and a watchdog thread that reads
the RSS) and reported as such: the whole-document behaviour needs more memory
than a shared machine has at 5,000,000 characters.

``--whole-doc`` restores the behaviour before bounded encoding: the detector's
encoder over whole documents (``model.attrs["block_tokens"] = 0``) and
``locate_label_ner`` without windows (``segmenter.max_length = null``), for a
before/after comparison on the same code (stitching stays the current one).

Output: a markdown table on stdout and ``--output`` (JSON, one row per run).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
GENIA_TRAIN = DATA / "genia" / "train.jsonl"
PUBMED = DATA / "unlabeled" / "pubmed_sentences.jsonl"
FACTORIES = ("locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner")
UPDATES = {"locate_label_ner": 40, "boundary_offset_ner": 150, "proposer_regressor_ner": 60}
STOPPED = 3  # exit status of a child stopped at the RSS limit


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _vm_size_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _train(nlp: Any, n_sentences: int, n_updates: int, seed: int) -> float:
    import spacy
    from spacy.training import Example

    from spacy_nested.corpora.formats.base import sentences_to_docs
    from spacy_nested.corpora.formats.jsonl import read_jsonl

    sentences = []
    for sentence in read_jsonl(GENIA_TRAIN):
        sentences.append(sentence)
        if len(sentences) == n_sentences:
            break
    gold = list(sentences_to_docs(sentences, nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    spacy.util.fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    losses: Dict[str, float] = {}
    for _ in range(n_updates):
        losses = nlp.update(examples, sgd=optimizer, drop=0.1)
    return float(sum(losses.values()))


def _text(n_chars: int) -> str:
    pieces: List[str] = []
    size = 0
    while size < n_chars:
        with PUBMED.open(encoding="utf8") as f:
            for line in f:
                text = json.loads(line)["text"]
                pieces.append(text)
                size += len(text) + 1
                if size >= n_chars:
                    break
    return " ".join(pieces)[:n_chars].rstrip()


def measure(factory: str, n_chars: int, *, n_sentences: int, n_updates: int, whole_doc: bool, limit_mb: float) -> Dict[str, Any]:
    """One measurement, in this process (called through ``--one``)."""
    import gc

    import spacy

    nlp = spacy.blank("en")
    config = {"segmenter": {"max_length": None, "overlap": 0}} if whole_doc and factory == "locate_label_ner" else {}
    pipe = nlp.add_pipe(factory, config=config)
    loss = _train(nlp, n_sentences, n_updates, seed=0)
    if whole_doc:
        pipe.model.attrs["block_tokens"] = 0
    nlp.max_length = max(nlp.max_length, n_chars + 1)
    text = _text(n_chars)
    nlp("Warm up on a short sentence of IL-2 gene expression .")
    gc.collect()
    _malloc_trim()
    reset = _reset_peak()
    baseline = _rss_mb()
    training_peak = None if reset else _peak_mb()
    limit = baseline + limit_mb
    _guard(limit)
    began = time.perf_counter()
    try:
        doc = nlp(text)
    except MemoryError:
        return {"stopped": True, "baseline_mb": baseline, "limit_mb": limit}
    seconds = time.perf_counter() - began
    peak = _peak_mb()
    return {
        "tokens": len(doc),
        "baseline_mb": baseline,
        "peak_mb": peak,
        "added_mb": peak - baseline,
        "seconds": seconds,
        "spans": len(doc.spans[pipe.key]),
        "train_loss": loss,
        "peak_reset": reset,
        **({"training_peak_mb": training_peak} if training_peak is not None else {}),
    }


def _malloc_trim() -> None:
    from spacy_nested.ml.bridge import give_heap_back

    give_heap_back()


def _guard(limit_mb: float) -> None:
    """Stop this process when its RSS passes ``limit_mb``: an address-space limit (allocations
    fail with MemoryError) and a watchdog thread for memory the limit does not see in time."""
    headroom = int((limit_mb - _rss_mb()) * 2**20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _vm_size_bytes() + headroom
    if hard == resource.RLIM_INFINITY or wanted < hard:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))

    def watch() -> None:
        while True:
            if _rss_mb() > limit_mb:
                print(json.dumps({"stopped": True, "limit_mb": limit_mb}), flush=True)
                os._exit(STOPPED)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


def run_all(args: argparse.Namespace) -> List[Dict[str, Any]]:
    rows = []
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    for n_chars in args.chars:
        for factory in args.factories:
            cmd = [
                sys.executable, __file__, "--one", factory, str(n_chars), "--sentences", str(args.sentences),
                "--updates", str(args.updates or UPDATES[factory]), "--rss-limit-mb", str(args.rss_limit_mb),
            ] + (["--whole-doc"] if args.whole_doc else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode not in (0, STOPPED) or not lines:
                raise RuntimeError(f"{factory} at {n_chars} chars failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            row = {"factory": factory, "chars": n_chars, "whole_doc": args.whole_doc, **json.loads(lines[-1])}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def markdown(rows: List[Dict[str, Any]]) -> str:
    lines = [
        "| chars | detector | tokens | baseline RSS MB | peak RSS MB | added MB | seconds | spans |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row["factory"] + (" (whole doc)" if row.get("whole_doc") else "")
        if row.get("stopped"):
            lines.append(f"| {row['chars']:,} | {name} | | | > {row['limit_mb']:,.0f} (stopped) | | | |")
            continue
        lines.append(
            f"| {row['chars']:,} | {name} | {row['tokens']:,} | {row['baseline_mb']:,.0f} | {row['peak_mb']:,.0f} "
            f"| {row['added_mb']:,.0f} | {row['seconds']:.1f} | {row['spans']:,} |"
        )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, nargs="+", default=[500_000, 5_000_000])
    parser.add_argument("--factories", nargs="+", default=list(FACTORIES), choices=FACTORIES)
    parser.add_argument("--output", default=str(REPO / "bench" / "out" / "long_line_memory.json"))
    parser.add_argument("--sentences", type=int, default=8, help="GENIA train sentences to train on")
    parser.add_argument("--updates", type=int, default=None, help="updates on those sentences (default: per detector)")
    parser.add_argument("--whole-doc", action="store_true", help="the encoder over whole docs, locate_label unwindowed")
    parser.add_argument("--rss-limit-mb", type=float, default=6000.0, help="stop a run that adds more than this")
    parser.add_argument("--one", nargs=2, metavar=("FACTORY", "CHARS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        factory, n_chars = args.one
        row = measure(
            factory, int(n_chars), n_sentences=args.sentences, n_updates=args.updates or UPDATES[factory],
            whole_doc=args.whole_doc, limit_mb=args.rss_limit_mb,
        )
        print(json.dumps(row), flush=True)
        sys.exit(STOPPED if row.get("stopped") else 0)
    rows = run_all(args)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
