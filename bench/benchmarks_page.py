"""Write docs/benchmarks.md: every measured result on one page.

    python bench/benchmarks_page.py            # writes docs/benchmarks.md
    python bench/benchmarks_page.py --check    # exit 1 when docs/benchmarks.md is not what it would write
    python bench/benchmarks_page.py --summary  # print the summary table only (the README's copy)

Two sources. The kept dev results in ``bench/results/`` (``bench/results.py``): their F1, P, R
and F1 by entity length, and the F1 differences with their paired-bootstrap 95% intervals,
computed here as ``python bench/results.py compare`` computes them. And ``bench/figures.json``:
what those files cannot give (words/s, training time, memory, and the dev scores of runs whose
per-sentence counts were not kept), copied as measured, each table with its date and
environment, plus which kept result is which pipeline and run, and the rows of the summary.
The page embeds docs/frontier.svg with the caption of ``figures.json``'s ``frontier``: the chart
itself is drawn by ``python bench/frontier.py`` from the same two sources.
"""

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

import results

BENCH = Path(__file__).resolve().parent
FIGURES = BENCH / "figures.json"
PAGE = BENCH.parent / "docs" / "benchmarks.md"
LENGTHS = ("1", "2", "3", "4", "5-9", ">=10")
LENGTH_HEADERS = ("F1 len 1", "2", "3", "4", "5–9", "≥10")


def signed(value: float) -> str:
    """A percentage with its sign, minus as U+2212 (the docs' style): ``+1.47``, ``−0.35``."""
    return f"{value:+.2f}".replace("-", "−")


def pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}"


def interval(name: str, reference: str) -> str:
    """``+1.47 (+0.66 to +2.24)``: F1(name) − F1(reference) and its 95% interval, in points."""
    diff = results.difference(name, reference)
    return f"{signed(100 * diff.delta)} ({signed(100 * diff.low)} to {signed(100 * diff.high)})"


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def summary_rows(figures: Dict[str, Any]) -> List[List[str]]:
    rows = []
    for row in figures["summary"]["rows"]:
        if "kept" in row:
            f1 = pct(results.load(row["kept"])["overall"]["f"]) + row.get("f1_suffix", "")
            delta = interval(row["kept"], row["against"]) if "against" in row else "–"
        else:
            f1, delta = row["f1"], row["delta"]
        rows.append([row["encoder"], row["pipeline"], f1, delta, row["words"], row["ratio"], row["training"]])
    return rows


def summary_table(figures: Dict[str, Any]) -> List[str]:
    return table(figures["summary"]["columns"], summary_rows(figures))


def kept_section(figures: Dict[str, Any]) -> List[str]:
    kept = figures["kept"]
    lines = [
        "## Dev accuracy (kept results)",
        "",
        "Each pipeline trained once with its config, its threshold tuned on dev (21 values from 0 to 1,",
        "the same for every pipeline), then scored on all of GENIA dev (1,765 sentences, 4,714 entities):",
        "strict (start, end, label) P, R and F1 in %, F1 by entity length in tokens. The per-sentence",
        "counts are kept in `bench/results/`, so every difference below is computed from them: F1",
        "difference in points, with the 95% interval of a paired bootstrap over the dev sentences",
        "(1,000 resamples; `python bench/results.py compare A B`). *Date*: when the result was kept.",
        f"*Environment*: {figures['environment']}, two or three trainings sharing the two cores.",
        "",
    ]
    for spec in figures["kept_tables"]:
        lines += [f"### {spec['title']}", "", spec["text"], ""]
        rows = []
        for name in spec["rows"]:
            result, meta = results.load(name), kept[name]
            overall, by_length = result["overall"], result["per_length"]
            lengths = [pct(by_length[key]["f"], 1) if key in by_length else "–" for key in LENGTHS]
            rows.append([meta["pipeline"], meta["run"], meta["date"], f"`{name}`", pct(overall["p"]), pct(overall["r"]),
                         pct(overall["f"]), *lengths])
        lines += table(["pipeline", "run", "date", "kept as", "P", "R", "F1", *LENGTH_HEADERS], rows) + [""]
        references = spec["references"]
        columns = ["pipeline", "run", "F1"]
        columns += [f"ΔF1 vs {kept[ref]['pipeline']} {kept[ref]['run']} (95% CI)" for ref in references]
        rows = [
            [kept[name]["pipeline"], kept[name]["run"], pct(results.load(name)["overall"]["f"])]
            + [interval(name, ref) if name != ref else "–" for ref in references]
            for name in spec["rows"]
        ]
        lines += table(columns, rows) + [""]
    lines += ["### Other comparisons of kept results", ""]
    rows = [
        [pair["label"], pct(results.load(pair["a"])["overall"]["f"]), pct(results.load(pair["b"])["overall"]["f"]),
         interval(pair["a"], pair["b"]), max(kept[pair["a"]]["date"], kept[pair["b"]]["date"])]
        for pair in figures["kept_pairs"]
    ]
    lines += table(["comparison", "F1", "against", "ΔF1 (95% CI)", "date"], rows) + [""]
    return lines


def frontier_section(figures: Dict[str, Any]) -> List[str]:
    """The chart of ``bench/frontier.py`` (docs/frontier.svg, drawn from the same sources) and its caption."""
    frontier = figures["frontier"]
    return [f"## {frontier['title']}", "", "![Dev F1 against words/s, one point per pipeline](frontier.svg)", "",
            frontier["caption"], ""]


def copied_section(section: Dict[str, Any]) -> List[str]:
    lines = [f"## {section['title']}", ""]
    if section["text"]:
        lines += [section["text"], ""]
    for spec in section["tables"]:
        dated = f"*Date*: {spec['date']}. *Environment*: {spec['environment']}."
        lines += [f"### {spec['title']}", "", dated, "", spec["how"], ""]
        lines += table(spec["columns"], spec["rows"]) + [""]
        for note in spec["notes"]:
            lines += [note, ""]
    return lines


def render(figures: Dict[str, Any]) -> str:
    summary = figures["summary"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python bench/benchmarks_page.py` from bench/results/ and bench/figures.json: do not edit. -->",
        "",
        "Every figure measured for this package, on one page: dev accuracy on GENIA, prediction speed,",
        "training time and memory. The GENIA test split is never used: everything is tuned and scored",
        "on dev. The accuracies of [Dev accuracy](#dev-accuracy-kept-results) are computed from the",
        "kept per-sentence counts in `bench/results/`; the other figures are copied, as measured, from",
        "`bench/figures.json`. Each table gives its date and environment. No GPU was used: the",
        "transformer figures are for all-MiniLM-L6-v2 fine-tuned on the CPU.",
        "",
        "## Summary",
        "",
        *summary_table(figures),
        "",
        *[f"{note}\n" for note in summary["notes"] + summary["dated_notes"]],
    ]
    lines += frontier_section(figures)
    lines += kept_section(figures)
    for section in figures["sections"]:
        lines += copied_section(section)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=PAGE, help="the page to write (default docs/benchmarks.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the page is not up to date")
    parser.add_argument("--summary", action="store_true", help="print the summary table only")
    args = parser.parse_args(argv)
    figures = json.loads(FIGURES.read_text(encoding="utf8"))
    if args.summary:
        print("\n".join(summary_table(figures)))
        return 0
    page = render(figures)
    if args.check:
        current = args.output.read_text(encoding="utf8") if args.output.exists() else ""
        if current == page:
            print(f"{args.output} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), page.splitlines(), str(args.output), "generated", lineterm="")
        print("\n".join(list(diff)[:40]))
        print(f"{args.output} is stale: run python bench/benchmarks_page.py")
        return 1
    args.output.write_text(page, encoding="utf8")
    print(f"wrote {args.output} ({len(page.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
