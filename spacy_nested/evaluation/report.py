"""Evaluation report: the detectors and the spaCy baselines side by side.

`evaluate` runs one pipeline over a gold DocBin and returns JSON-able metrics:
strict P/R/F overall, per type, per entity length (the buckets of the papers'
Tables 2/3) and per nesting depth, with words/s and peak memory.
`render_report` writes ``report.md``, ``report.json`` and ``f1_by_length.png``
for several such metrics. The commands:

    python -m spacy_nested evaluate MODEL corpus/dev.spacy --output metrics/NAME.json
    python -m spacy_nested report metrics/A.json metrics/B.json --output-dir reports

The plot needs matplotlib (``pip install spacy-nested[plot]``); without it the
markdown and JSON are still written.
"""
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from wasabi import msg

from spacy_nested.corpora.tokenizer import retokenized_as
from spacy_nested.evaluation.bootstrap import paired_bootstrap
from spacy_nested.evaluation.scoring import (
    DEPTH_BUCKETS,
    LENGTH_BUCKETS,
    counts_per_doc,
    score_by_depth,
    score_by_length,
    score_by_type,
)

PLOT_NAME = "f1_by_length.png"
# spaCy's own span pipelines: each other pipeline is compared with the best of them (by dev F1)
BASELINES = ("spancat", "span_finder")


def evaluate(
    nlp: Union[str, Path, Language],
    docbin_path: Union[str, Path],
    spans_key: str = "nested",
    batch_size: int = 128,
    pred_key: Optional[str] = None,
    limit: int = 0,
) -> Dict[str, Any]:
    """Predict the docs of a gold DocBin from their text and score the predictions.

    nlp: a pipeline, or a name or path for `spacy.load`. Any pipeline that writes
        spans to ``doc.spans[pred_key]`` works (spaCy's spancat included).
    docbin_path: the gold docs, spans under ``spans_key``. The pipeline runs on
        their tokens (not on their texts through its tokenizer), so span
        boundaries compare by token index.
    pred_key: the key the pipeline writes to; `spans_key` when None.
    limit: score only the first `limit` docs (0: all).
    RETURNS: "overall" (p, r, f, n_gold, n_pred) and the same per group in
        "per_type", "per_length" (`LENGTH_BUCKETS`) and "per_depth"
        (`DEPTH_BUCKETS`); "per_doc": each doc's counts ("tp", "n_pred",
        "n_gold" lists, for the report's paired bootstrap); "n_docs",
        "n_words"; "words_per_s": words over the
        wall time of one `nlp.pipe` pass over all texts (tokenization
        included), after a warm-up call on the first text; "peak_rss_mb":
        peak RSS of the evaluating process (ru_maxrss when done, so it
        includes loading the pipeline and the data).
    """
    pred_key = spans_key if pred_key is None else pred_key
    if not isinstance(nlp, Language):
        nlp = spacy.load(nlp)
    gold = list(DocBin().from_disk(docbin_path).get_docs(nlp.vocab))
    gold = gold[:limit] if limit > 0 else gold
    # The gold tokens, whatever the pipeline's tokenizer (a raw-text tokenizer such as
    # spacy_nested.BiomedicalTokenizer.v1 cuts a few GENIA sentences differently).
    inputs = [retokenized_as(g, nlp.vocab) for g in gold]
    if inputs:
        nlp(inputs[0].copy())
    start = time.perf_counter()
    preds = list(nlp.pipe(inputs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    for g, p in zip(gold, preds):
        if pred_key != spans_key:
            p.spans[spans_key] = list(p.spans.get(pred_key, []))
    pairs = list(zip(gold, preds))
    per_length = score_by_length(pairs, spans_key)
    per_type = score_by_type(pairs, spans_key)
    per_depth = score_by_depth(pairs, spans_key)
    n_words = sum(len(doc) for doc in gold)
    return {
        "spans_key": spans_key,
        "pred_key": pred_key,
        "overall": per_length.pop("all"),
        "per_type": {label: per_type[label] for label in sorted(per_type) if label != "all"},
        "per_length": per_length,
        "per_depth": {b: per_depth[b] for b in DEPTH_BUCKETS},
        "per_doc": counts_per_doc(pairs, spans_key),
        "n_docs": len(gold),
        "n_words": n_words,
        "words_per_s": n_words / seconds if seconds > 0 else 0.0,
        "peak_rss_mb": peak_rss_mb(),
    }


def benchmark_speed(
    nlp: Union[str, Path, Language],
    docbin_path: Union[str, Path],
    batch_size: int = 128,
    n_batches: int = 50,
    warmup_epochs: int = 1,
) -> Dict[str, Any]:
    """Words/s as ``spacy benchmark speed`` measures it: mean and bootstrapped 95% CI.

    After `warmup_epochs` passes over the docs, `n_batches` batches of
    `batch_size` texts drawn at random (seed 0) are annotated, one words/s
    figure per batch. RETURNS: "words_per_s" (mean), "ci95" (low, high),
    "batch_size", "n_batches".
    """
    import random

    from spacy.cli.benchmark_speed import benchmark, bootstrap, warmup

    if not isinstance(nlp, Language):
        nlp = spacy.load(nlp)
    docs = list(DocBin().from_disk(docbin_path).get_docs(nlp.vocab))
    if not docs:
        raise ValueError(f"{docbin_path}: no docs to benchmark")
    random.seed(0)
    warmup(nlp, docs, warmup_epochs, batch_size)
    wps = benchmark(nlp, docs, n_batches, batch_size, True)
    means = numpy.sort(bootstrap(wps))
    ci = (float(means[int(len(means) * 0.025)]), float(means[int(len(means) * 0.975)]))
    return {"words_per_s": float(numpy.mean(wps)), "ci95": ci, "batch_size": batch_size, "n_batches": n_batches}


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def render_report(metrics: Dict[str, Dict[str, Any]], out_dir: Union[str, Path]) -> List[Path]:
    """Write report.md, report.json and (with matplotlib) f1_by_length.png to `out_dir`.

    metrics: pipeline name -> the output of `evaluate`, in table order.
    RETURNS: the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {name: {**m, **_versus(name, metrics)} for name, m in metrics.items()}
    paths = [out_dir / "report.md", out_dir / "report.json"]
    paths[0].write_text(render_markdown(metrics), encoding="utf8")
    paths[1].write_text(json.dumps(metrics, indent=2), encoding="utf8")
    try:
        paths.append(plot_f1_by_length(metrics, out_dir / PLOT_NAME))
    except ImportError:
        msg.warn(f"No {PLOT_NAME}: pip install spacy-nested[plot]", "The plot needs matplotlib.")
    return paths


def _versus(name: str, metrics: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """``{"vs_baseline": ...}``: the F1 difference of pipeline `name` to the best baseline in
    `metrics` (`BASELINES`, by overall F1) with its paired-bootstrap 95% interval (1,000
    samples), in points; empty for that baseline itself, or without the per-doc counts."""
    scored = {n: m for n, m in metrics.items() if "per_doc" in m and "overall" in m}
    baselines = [n for n in BASELINES if n in scored]
    if name not in scored or not baselines:
        return {}
    best = max(baselines, key=lambda n: scored[n]["overall"]["f"])
    if name == best:
        return {}
    diff = paired_bootstrap(scored[name]["per_doc"], scored[best]["per_doc"])
    return {"vs_baseline": {"baseline": best, "delta": 100 * diff.delta, "ci95": [100 * diff.low, 100 * diff.high]}}


def _interval(versus: Optional[Dict[str, Any]]) -> str:
    if not versus:
        return "–"
    low, high = versus["ci95"]
    return f"{versus['delta']:+.2f} ({low:+.2f} to {high:+.2f})"


def _pct(score: Optional[Dict[str, float]], key: str = "f", digits: int = 1) -> str:
    """A score in percent, or "–" when the group has neither gold nor predicted spans."""
    if not score or not (score.get("n_gold") or score.get("n_pred")):
        return "–"
    return f"{100 * score[key]:.{digits}f}"


def _table(head: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _benchmark(result: Optional[Dict[str, Any]]) -> str:
    if not result:
        return "–"
    low, high = result["ci95"]
    return f"{result['words_per_s']:,.0f} ({low:,.0f}–{high:,.0f})"


def render_markdown(metrics: Dict[str, Dict[str, Any]]) -> str:
    """The report as markdown: an overall table, then per-type and per-depth tables.

    The per-depth table says in its headers that R counts gold spans by their
    depth among the gold and P predicted spans by theirs among the predictions.
    """
    first = next(iter(metrics.values()), {})
    n_len = {b: s.get("n_gold", 0) for b, s in first.get("per_length", {}).items()}
    head = ["pipeline", "P", "R", "F1"] + [f"F1 len {b} (n={n_len.get(b, '?')})" for b in LENGTH_BUCKETS]
    rows = []
    for name, m in metrics.items():
        row = [name] + [_pct(m.get("overall"), k, 2) for k in ("p", "r", "f")]
        row += [_pct(m.get("per_length", {}).get(b)) for b in LENGTH_BUCKETS]
        row += [f"{m['words_per_s']:,.0f}" if "words_per_s" in m else "–"]
        row += [f"{m['peak_rss_mb']:,.0f}" if "peak_rss_mb" in m else "–"]
        row += [_benchmark(m.get("benchmark"))]
        row += [_interval(m.get("vs_baseline"))]
        rows.append(row)
    baseline = next((m["vs_baseline"]["baseline"] for m in metrics.values() if m.get("vs_baseline")), None)
    note = "Strict P/R/F in % (boundaries and type). n: gold spans in the first pipeline's data."
    if baseline:
        note += (
            f" ΔF1: F1 minus that of {baseline}, the best spaCy baseline here, in points, with the 95% interval"
            " of a paired bootstrap over the same docs (1,000 samples; spacy_nested/evaluation/bootstrap.py): an interval"
            " above 0 means better beyond the luck of the draw."
        )
    parts = ["# Evaluation report", "", note, ""]
    versus = f"ΔF1 vs {baseline} (95% CI)" if baseline else "ΔF1 vs best baseline (95% CI)"
    parts.append(_table(head + ["words/s", "peak RSS (MB)", "benchmark words/s (95% CI)", versus], rows))
    labels = sorted({label for m in metrics.values() for label in m.get("per_type", {})})
    n_type = {label: s.get("n_gold", 0) for label, s in first.get("per_type", {}).items()}
    rows = [[name] + [_pct(m.get("per_type", {}).get(label)) for label in labels] for name, m in metrics.items()]
    head = ["pipeline"] + [f"{label} (n={n_type.get(label, '?')})" for label in labels]
    parts += ["## F1 per type", "", _table(head, rows)]
    n_depth = {b: s.get("n_gold", 0) for b, s in first.get("per_depth", {}).items()}
    head = ["pipeline"]
    for b in DEPTH_BUCKETS:
        head += [f"R: gold at depth {b} (n={n_depth.get(b, '?')})", f"P: predicted at depth {b}", f"F1 of these R, P (depth {b})"]
    rows = []
    for name, m in metrics.items():
        depth = m.get("per_depth", {})
        rows.append([name] + [_pct(depth.get(b), k) for b in DEPTH_BUCKETS for k in ("r", "p", "f")])
    parts += [
        "## Per nesting depth: recall by gold depth, precision by predicted depth",
        "",
        "Depth 1: inside no other span; depth k: inside a chain of k - 1 nested spans. "
        "R and P of a depth count different spans: R the gold spans at that depth among the gold spans, "
        "P the predicted spans at that depth among the predictions; F1 combines the two. A correct span "
        "can count at two depths: one whose gold container was missed is at a lower depth among the "
        "predictions, so it counts for R at its gold depth and for P at its predicted depth.",
        "",
        _table(head, rows),
        "words/s: words over the wall time of one `nlp.pipe` pass over the texts after a warm-up call; "
        "peak RSS: of the evaluating process; benchmark words/s: `spacy benchmark speed`'s measure "
        "(mean over random batches, bootstrapped 95% CI), written by the project's `benchmark` step.",
        "",
    ]
    return "\n".join(parts)


def plot_f1_by_length(metrics: Dict[str, Dict[str, Any]], path: Path) -> Path:
    """A grouped bar chart of F1 per length bucket, one series per pipeline (Agg backend).

    Raises ImportError when matplotlib is not installed.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(16.0, 4.0 + 0.25 * len(LENGTH_BUCKETS) * len(metrics)), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(metrics))
    colors = matplotlib.colormaps["tab10" if len(metrics) <= 10 else "tab20"]
    for i, (name, m) in enumerate(metrics.items()):
        per_length = m.get("per_length", {})
        f1 = [100 * per_length.get(b, {}).get("f", 0.0) for b in LENGTH_BUCKETS]
        xs = [x - 0.4 + (i + 0.5) * width for x in range(len(LENGTH_BUCKETS))]
        ax.bar(xs, f1, width, label=name, color=colors(i % colors.N))
    n_gold = next(iter(metrics.values()), {}).get("per_length", {})
    ticks = [f"{b}\n(n={n_gold[b]['n_gold']})" if b in n_gold else b for b in LENGTH_BUCKETS]
    ax.set_xticks(range(len(LENGTH_BUCKETS)), ticks)
    ax.set_title("F1 by entity length")
    ax.set_xlabel("entity length (tokens)")
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path




def write_metrics(metrics: Dict[str, Any], output: Path) -> None:
    """Save the output of `evaluate` as JSON and print its headline figures."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2), encoding="utf8")
    o = metrics["overall"]
    msg.good(
        f"P {100 * o['p']:.2f} R {100 * o['r']:.2f} F {100 * o['f']:.2f}, {metrics['words_per_s']:,.0f} words/s",
        f"Peak RSS {metrics['peak_rss_mb']:,.0f} MB. Saved to {output}",
    )


def metrics_files(paths: List[Path]) -> List[Path]:
    """The JSON files named, and those in the folders named (sorted by name), in order."""
    files: List[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return files


