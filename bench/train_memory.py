"""Host memory (RSS) and speed of training each detector and spancat, update by update (issue 17).

    python -m spacy_nested convert ../shared/data/genia/train.jsonl /tmp/genia/train.spacy
    python -m spacy_nested convert ../shared/data/genia/dev.jsonl /tmp/genia/dev.spacy --split-tokens
    OMP_NUM_THREADS=1 python bench/train_memory.py --train /tmp/genia/train.spacy --dev /tmp/genia/dev.spacy --compare

Each pipeline is built from its CPU config (``configs/genia_<name>_cpu.cfg``; with
``--encoder minilm`` its MiniLM config, whose batches are about 400 words: ``--words 400``),
initialized on the first 2,000 train docs (every label occurs there) and
updated ``--updates`` times with ``nlp.update`` and the config's optimizer and
dropout, on the same batches of about ``--words`` words for every pipeline
(spaCy's ``batch_by_words`` over the GENIA train docs read by spaCy's ``Corpus``,
shuffled with ``--seed`` and cycled: 406 batches, so updates 407-1,000 see them
again), on one
thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``), each pipeline in
a fresh process. Every ``--every`` updates it prints the RSS then and the peak
RSS since the last print (``VmHWM``, reset through ``/proc/self/clear_refs``, so a
short spike between two readings is not missed), and at the end:

* growth: (RSS at the last update - RSS at update ``--after``) / RSS at ``--after``,
  in % per 1,000 updates; the same for the interval peaks;
* peak RSS of the whole run, initialization included: the largest of the interval
  peaks (``ru_maxrss`` cannot give it: resetting ``VmHWM`` resets it too);
* training words/s from update ``--after`` on, by the wall clock and per CPU
  second of the process (the latter is steadier on a shared machine).

``--compare`` also runs each detector without the fix of ``ml/bridge.py``: with
thinc's own ``PyTorchShim`` (whose ``finish_update`` chains its parameters),
oneDNN's default kernel cache of 1,024 and no periodic ``malloc_trim``
(``--no-fix``: only that); ``--no-trim`` keeps the rest of the fix and leaves out
the trim alone. spancat has no torch head and runs once.
``--json PATH`` writes every figure, ``--table PATH...`` prints the table of such
files (for example of a run with the fix and one with ``--no-fix`` run side by
side, so that both see the same load). Linux only (``/proc``).
"""
import argparse
import ctypes
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
INIT_DOCS = 2000
PIPELINES = ["spancat", "locate_label", "boundary_offset", "proposer_regressor"]


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 2**10
    raise KeyError(key)


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    return _status_mb("VmRSS")


def interval_peak_mb() -> float:
    """Peak RSS since the last call (MiB): VmHWM, then reset it to the current RSS."""
    peak = _status_mb("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak


def heap_stats() -> str:
    """glibc's view of its heap (mallinfo2): bytes in use, free inside the heap, and mmapped."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return ""
    m = libc.mallinfo2()
    return f"heap used {m.uordblks / 2**20:.0f} MB, free {m.fordblks / 2**20:.0f} MB, mmapped {m.hblkhd / 2**20:.0f} MB"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def unfix(nlp: Any) -> int:
    """Give every torch head back thinc's own PyTorchShim (the fix off); how many."""
    from thinc.api import PyTorchShim

    n = 0
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is not None and model.has_ref("head"):
            model.get_ref("head").shims[0].__class__ = PyTorchShim
            n += 1
    return n


def run_one(args: argparse.Namespace) -> Dict[str, Any]:
    """Train one pipeline in this process; the figures as a dict."""
    import torch

    torch.set_num_threads(1)
    import spacy
    from spacy.training.batchers import minibatch_by_words
    from spacy.training.corpus import Corpus
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry

    from spacy_nested.ml import bridge

    name = args.child
    overrides = {"paths.train": args.train, "paths.dev": args.dev, "corpora.train.limit": INIT_DOCS}
    config = load_config(REPO / "configs" / f"genia_{name}_{args.encoder}.cfg", overrides=overrides)
    callback = config["initialize"].get("before_init") or {}
    if callback.get("@callbacks") != "spacy_nested.flat_training_memory.v1":
        raise SystemExit(f"{name}: the config's [initialize.before_init] is not spacy_nested.flat_training_memory.v1")
    if args.no_fix:
        config["initialize"]["before_init"] = None  # no callback: oneDNN's cache, thinc's shims, no trim
    elif args.no_trim:
        callback["trim_every"] = 0
    spacy.util.fix_random_seed(args.seed)
    nlp = init_nlp(config)
    unfixed = unfix(nlp) if args.no_fix else 0
    T = registry.resolve(nlp.config["training"])
    optimizer, dropout = T["optimizer"], T["dropout"]
    examples = list(Corpus(args.train)(nlp))
    random.Random(args.seed).shuffle(examples)
    batches = list(minibatch_by_words(examples, size=args.words, tolerance=0.2, discard_oversize=False))
    print(f"{name}\tfix {'off' if args.no_fix else 'on'} ({unfixed} shims unfixed)\t{len(batches)} batches"
          f"\t{rss_mb():.0f} MB", file=sys.stderr, flush=True)
    rows: List[Tuple[int, float, float]] = []
    progress: List[Tuple[int, float, float, int]] = []  # step, CPU s, wall s, words: words/s over any window
    n_words = all_words = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    wall = cpu = 0.0
    init_peak = interval_peak_mb()  # initialization's peak
    for step in range(1, args.updates + 1):
        batch = batches[(step - 1) % len(batches)]
        if step == args.after + 1:
            wall, cpu = time.perf_counter(), time.process_time()
        nlp.update(batch, sgd=optimizer, drop=dropout, losses={})
        words = sum(len(eg.predicted) for eg in batch)
        all_words += words
        if step > args.after:
            n_words += words
        if step % args.every == 0:
            rows.append((step, rss_mb(), interval_peak_mb()))
            progress.append((step, time.process_time() - cpu0, time.perf_counter() - wall0, all_words))
            print(f"{name}\t{step}\t{rows[-1][1]:.0f} MB (peak {rows[-1][2]:.0f})\tcpu {time.process_time():.0f} s"
                  f"\t{heap_stats()}", file=sys.stderr, flush=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "name": name if args.encoder == "cpu" else f"{name} ({args.encoder})",
        "fix": not args.no_fix,
        "trim": bridge.TRIM_EVERY,
        "rss": rows,
        "peak_rss_mb": max([init_peak, _status_mb("VmHWM")] + [row[2] for row in rows]),
        "words": n_words,
        "words_per_s": n_words / wall if wall else 0.0,
        "words_per_cpu_s": n_words / cpu if cpu else 0.0,
        "n_batches": len(batches),
        "progress": progress,
    }


def growth(rows: List[List[float]], after: int, column: int = 1) -> float:
    """Growth of the readings from update ``after`` on: least-squares slope, in % of the
    fitted value at ``after`` per 1,000 updates (one reading is one update's state, so a
    fit is steadier than two end points)."""
    pts = [(r[0], r[column]) for r in rows if r[0] >= after]
    if len(pts) < 2:
        return float("nan")
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return 100.0 * slope * 1000 / (my + slope * (after - mx))


def child(args: argparse.Namespace, name: str, fix: bool) -> Dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    cmd = [sys.executable, __file__, "--child", name, "--train", args.train, "--dev", args.dev,
           "--updates", str(args.updates), "--every", str(args.every), "--words", str(args.words),
           "--seed", str(args.seed), "--after", str(args.after), "--encoder", args.encoder] + ([] if fix else ["--no-fix"])
    cmd += ["--no-trim"] if args.no_trim else []
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def window_speed(result: Dict[str, Any], start: int, end: int) -> Tuple[float, float]:
    """Words/s and words per CPU second between two readings (from ``progress``)."""
    at = {p[0]: p for p in result.get("progress", [])}
    if start not in at or end not in at:
        return float("nan"), float("nan")
    (_, c0, w0, n0), (_, c1, w1, n1) = at[start], at[end]
    return (n1 - n0) / (w1 - w0), (n1 - n0) / (c1 - c0)


def table(results: List[Dict[str, Any]], after: int) -> str:
    """RSS every --every updates, growth, peak and speed of each run; then, for each detector
    run with and without the fix, its speed over the updates both runs have in common."""
    steps = sorted({r[0] for res in results for r in res["rss"]})
    head = ["pipeline", "fix"] + [str(s) for s in steps]
    head += [f"growth after {after} (%/1k: RSS; peaks)", "peak RSS", "words/s", "words/CPU-s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        fix = ("on" if r.get("trim", 1) else "on, no trim") if r["fix"] else "off"
        cells = [r["name"], "–" if r["name"] == "spancat" else fix]
        rss = {row[0]: row[1] for row in r["rss"]}
        cells += [f"{rss[s]:,.0f}" if s in rss else "" for s in steps]
        cells += [f"{growth(r['rss'], after):+.1f}; {growth(r['rss'], after, 2):+.1f}", f"{r['peak_rss_mb']:,.0f}"]
        cells += [f"{r['words_per_s']:,.0f}", f"{r['words_per_cpu_s']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for name in dict.fromkeys(r["name"] for r in results):
        on = [r for r in results if r["name"] == name and r["fix"]]
        off = [r for r in results if r["name"] == name and not r["fix"]]
        if not on or not off:
            continue
        end = min(on[0]["rss"][-1][0], off[0]["rss"][-1][0])
        if on[0]["rss"][-1][0] == off[0]["rss"][-1][0]:
            speeds = [(r["words_per_s"], r["words_per_cpu_s"]) for r in (on[0], off[0])]
        else:
            speeds = [window_speed(r, after, end) for r in (on[0], off[0])]
        (wall_on, cpu_on), (wall_off, cpu_off) = speeds
        lines.append(f"\n{name}, updates {after + 1}-{end}: words/s {wall_on:,.0f} with the fix, {wall_off:,.0f} without "
                     f"({100 * (wall_on / wall_off - 1):+.1f}%); per CPU second {cpu_on:,.0f} and {cpu_off:,.0f} "
                     f"({100 * (cpu_on / cpu_off - 1):+.1f}%)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train")
    parser.add_argument("--dev")
    parser.add_argument("--pipelines", nargs="*", default=PIPELINES, choices=PIPELINES)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--encoder", default="cpu", choices=["cpu", "minilm"], help="configs/genia_<name>_<encoder>.cfg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--after", type=int, default=200, help="growth and words/s are measured from this update on")
    parser.add_argument("--compare", action="store_true", help="also run each detector with thinc's own shim (the fix off)")
    parser.add_argument("--no-fix", action="store_true", help="run the detectors with thinc's own shim only")
    parser.add_argument("--no-trim", action="store_true", help="the fix without its periodic malloc_trim (trim_every = 0)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--table", nargs="*", type=Path, help="print the table of earlier --json files, and run nothing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.table:
        print(table([r for path in args.table for r in json.loads(path.read_text())], args.after))
        return
    if not args.train or not args.dev:
        parser.error("--train and --dev are required")
    if args.child:
        print(json.dumps(run_one(args)))
        return
    results = []
    for name in args.pipelines:
        modes = [True] if name == "spancat" else [True, False] if args.compare else [not args.no_fix]
        for fix in modes:
            results.append(child(args, name, fix))
            print(table(results[-1:], args.after).splitlines()[-1], flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    print(table(results, args.after))


if __name__ == "__main__":
    main()
