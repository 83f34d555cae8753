"""Draw docs/frontier.svg: dev F1 against words/s, one point per pipeline.

    python bench/frontier.py            # writes docs/frontier.svg
    python bench/frontier.py --check    # exit 1 when docs/frontier.svg is not what it would write

Nothing is trained or predicted: the chart is drawn from the kept dev results in
``bench/results/`` (``bench/results.py``) and the speeds copied into ``bench/figures.json``, the
two sources of docs/benchmarks.md (``bench/benchmarks_page.py``, which embeds the chart under
``figures.json``'s ``frontier.title`` with ``frontier.caption``). One point per entry of
``frontier.points``:

* y: the pipeline's dev F1 in %. The vertical bar is the 95% paired-bootstrap interval of its F1
  difference to ``frontier.references[encoder]`` (span_finder + spancat on the same encoder,
  ``results.difference``), drawn around its F1: a bar clear of the dotted line at the
  reference's F1 is a difference the bootstrap supports. An entry without a kept result
  (per-sentence counts not kept) copies its F1 from a table cell and has no bar (hollow marker, †).
* x (log scale): words/s, the cells of ``figures.json``'s tables that the entry's ``speed`` names;
  the horizontal bar spans them (several sittings), the point sits at the middle of that range
  on the log scale. ``annotate`` words/s, or words per CPU second of prediction
  (``bench/head_speed.py``, ‡) where the column's header says "per CPU s".
* colour and marker: the encoder (the kept name's prefix: ``cpu``, ``minilm``); a black ring:
  an int8 variant (``int8`` in the kept name).

Adding a pipeline (say ``cpu/fast`` or ``minilm/proposer_regressor-int8``): keep its dev result
(``python bench/results.py keep METRICS.json cpu/fast``), copy its measured words/s into a table
of the "Prediction speed" section of ``figures.json`` (a row, under a table with its date and
environment), then append to ``frontier.points``::

    {"label": "fast", "kept": "cpu/fast",
     "speed": [{"table": "TABLE TITLE", "row": "ROW'S FIRST CELL", "column": "HEADER (default: the 2nd)"}]}

and run ``python bench/frontier.py`` and ``python bench/benchmarks_page.py``. A new encoder
also needs its display name in ``frontier.encoders`` and its reference in ``frontier.references``.
Labels are placed automatically, away from the markers, bars, legend and other labels.
"""

import argparse
import io
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Tuple

import results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

BENCH = Path(__file__).resolve().parent
FIGURES = BENCH / "figures.json"
CHART = BENCH.parent / "docs" / "frontier.svg"
HASH_SALT = "spacy-nested-frontier"  # svg.hashsalt: the SVG's element ids, the same on every run
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")
MARKERS = ("o", "s", "D", "^", "v")
TICKS = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
NOT_KEPT, PER_CPU_S = "†", "‡"
MARKER_SIZE, NEAR = 7.0, 6.0  # points: the markers' size, a label's offset from its point when it needs no leader line


@dataclass(frozen=True)
class Point:
    """One plotted pipeline: F1 and its bar in %, its words/s figures."""

    label: str
    encoder: str
    kept: Optional[str]  # its kept result; None: F1 copied from a table, no interval
    f1: float
    low: float  # the bar, in % (low == high: no bar)
    high: float
    words: Tuple[float, ...]  # every words/s figure it names
    per_cpu_s: bool  # words per CPU second of prediction, not `annotate` words/s
    int8: bool

    @property
    def x(self) -> float:
        """The middle of the words/s range on the log scale."""
        return math.sqrt(min(self.words) * max(self.words))

    @property
    def text(self) -> str:
        """The label as drawn: the short name and its marks (†, ‡)."""
        return self.label + ("" if self.kept else NOT_KEPT) + (PER_CPU_S if self.per_cpu_s else "")


def load_figures() -> Dict[str, Any]:
    return json.loads(FIGURES.read_text(encoding="utf8"))


def cell(figures: Dict[str, Any], ref: Dict[str, str]) -> Tuple[str, str]:
    """The text of the cell ``ref`` names (``table`` title, ``row``'s first cell, ``column``) and its header."""
    tables = [spec for section in figures["sections"] for spec in section["tables"] if spec["title"] == ref["table"]]
    if len(tables) != 1:
        raise ValueError(f"{len(tables)} tables titled {ref['table']!r} in {FIGURES.name}")
    spec = tables[0]
    column = spec["columns"].index(ref["column"]) if "column" in ref else 1
    rows = [row for row in spec["rows"] if row[0] == ref["row"]]
    if len(rows) != 1:
        raise ValueError(f"{len(rows)} rows {ref['row']!r} in the table {ref['table']!r}")
    return rows[0][column], spec["columns"][column]


def numbers(text: str) -> List[float]:
    """The figures of a cell: ``4,907 (0.32×)`` -> [4907], ``737 / 903`` -> [737, 903]."""
    parts = [part.strip().replace(",", "") for part in re.sub(r"\([^)]*\)", "", text).split("/")]
    if not all(re.fullmatch(r"[0-9]+(\.[0-9]+)?", part) for part in parts):
        raise ValueError(f"not a figure or figures separated by '/': {text!r}")
    return [float(part) for part in parts]


def make_point(figures: Dict[str, Any], entry: Dict[str, Any]) -> Point:
    """The point of one entry of ``frontier.points`` (see the module's docstring)."""
    frontier, kept = figures["frontier"], entry.get("kept")
    speeds = [cell(figures, ref) for ref in entry["speed"]]
    per_cpu_s = {"per CPU s" in header for _, header in speeds}
    if len(per_cpu_s) != 1:
        raise ValueError(f"{entry['label']}: `annotate` words/s and words per CPU second in one point")
    words = tuple(value for text, _ in speeds for value in numbers(text))
    if kept:
        encoder = kept.split("/", 1)[0]
        f1 = 100 * results.load(kept)["overall"]["f"]
        reference = frontier["references"][encoder]
        if reference == kept:
            low = high = f1
        else:
            diff = results.difference(kept, reference)
            low, high = f1 + 100 * (diff.low - diff.delta), f1 + 100 * (diff.high - diff.delta)
    else:
        encoder = entry["encoder"]
        (f1,) = numbers(cell(figures, entry["f1"])[0])
        low = high = f1
    return Point(entry.get("label") or (kept or "").split("/", 1)[-1], encoder, kept, f1, low, high, words,
                 per_cpu_s.pop(), "int8" in (kept or ""))


def points(figures: Dict[str, Any]) -> List[Point]:
    """Every point the chart draws, in ``frontier.points``'s order."""
    return [make_point(figures, entry) for entry in figures["frontier"]["points"]]


def encoders(figures: Dict[str, Any], plotted: List[Point]) -> Dict[str, str]:
    """Encoder -> display name, ``frontier.encoders``'s first, then any other in order of appearance."""
    names = dict(figures["frontier"]["encoders"])
    for point in plotted:
        names.setdefault(point.encoder, point.encoder)
    return names


def _overlap(a: "Bbox", b: "Bbox") -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _align(offset: Tuple[float, float]) -> Tuple[Literal["left", "center", "right"], Literal["bottom", "center", "top"]]:
    """The text's alignment for an offset from its point: away from the point."""
    dx, dy = offset
    return ("left" if dx > 0 else "right" if dx < 0 else "center"), ("bottom" if dy > 0 else "top" if dy < 0 else "center")


def place_labels(ax: "Axes", plotted: List[Point], renderer: "RendererBase", obstacles: List["Bbox"],
                 own: List["Bbox"]) -> None:
    """Label each point where its text overlaps nothing drawn so far, close to it if possible.

    Candidates: the four diagonals first (clear of the point's own bars), then right, left, above,
    below, each at three distances (a grey leader line beyond the first); the first that
    overlaps no marker, bar, legend or earlier label inside the axes wins, else the one that
    overlaps least. ``own[i]``: point i's marker, which its label may touch. Deterministic: the
    same points give the same places.
    """
    from matplotlib.transforms import Bbox

    frame = ax.get_window_extent(renderer)
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    candidates = [(dx * d, dy * d) for d in (NEAR, 16.0, 28.0) for dx, dy in directions]
    placed: List[Bbox] = []
    for i, point in enumerate(plotted):
        others = [box for box in obstacles if box is not own[i]]
        best: Optional[Tuple[float, Tuple[float, float]]] = None
        annotation = ax.annotate(point.text, (point.x, point.f1), xytext=(0, 0), textcoords="offset points", fontsize=8)
        for offset in candidates:
            annotation.set_position(offset)
            annotation.set_horizontalalignment(_align(offset)[0])
            annotation.set_verticalalignment(_align(offset)[1])
            box = annotation.get_window_extent(renderer).padded(1.5)
            outside = box.width * box.height - _overlap(box, frame)
            cost = sum(_overlap(box, other) for other in others + placed) + 10 * outside
            if best is None or cost < best[0]:
                best = (cost, offset)
            if cost == 0:
                break
        assert best is not None
        annotation.remove()
        offset = best[1]
        far = max(abs(offset[0]), abs(offset[1])) > NEAR
        halign, valign = _align(offset)
        annotation = ax.annotate(point.text, (point.x, point.f1), xytext=offset, textcoords="offset points",
                                 fontsize=8, ha=halign, va=valign,
                                 arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}
                                 if far else None)
        placed.append(annotation.get_window_extent(renderer).padded(1.5))


def draw(figures: Dict[str, Any], plotted: List[Point]) -> "Figure":
    """The chart of ``plotted`` (Agg canvas), labels placed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    from matplotlib.transforms import Bbox

    names = encoders(figures, plotted)
    style = {encoder: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]) for i, encoder in enumerate(names)}
    fig = Figure(figsize=(8.0, 5.6))
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    references = figures["frontier"]["references"]
    for encoder, reference in references.items():
        if any(point.encoder == encoder for point in plotted):
            ax.axhline(100 * results.load(reference)["overall"]["f"], color=style[encoder][0], ls=":", lw=1, zorder=1)
    for point in plotted:
        colour, marker = style[point.encoder]
        low, high = min(point.words), max(point.words)
        ax.plot([low, high], [point.f1, point.f1], color=colour, lw=1, alpha=0.6, zorder=2)
        if point.high > point.low:
            ax.plot([point.x, point.x], [point.low, point.high], color=colour, lw=1.4, zorder=2)
        ax.plot([point.x], [point.f1], marker=marker, ms=MARKER_SIZE, ls="none", zorder=3,
                color=colour, markerfacecolor=colour if point.kept else "white",
                markeredgecolor="black" if point.int8 else colour, markeredgewidth=1.8 if point.int8 else 1.2)
    xs = [value for point in plotted for value in point.words]
    ys = [value for point in plotted for value in (point.low, point.high)]
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    ax.set_ylim(math.floor(min(ys) - 0.8), math.ceil(max(ys) + 0.8))
    ax.xaxis.set_major_locator(FixedLocator([tick for tick in TICKS if min(xs) / 1.6 <= tick <= max(xs) * 1.6]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(True, color="0.9", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.set_xlabel("words/s, log scale (‡ words per CPU second)")
    ax.set_ylabel("dev F1 (%)")
    ax.set_title("GENIA dev F1 against prediction speed, 2-core CPU", fontsize=11)
    handles = [Line2D([], [], color=style[e][0], marker=style[e][1], ls="none", label=names[e]) for e in names]
    handles.append(Line2D([], [], color="0.3", marker="|", ms=12, mew=1.4, ls="none",
                          label="95% paired-bootstrap interval vs span_finder + spancat"))
    handles.append(Line2D([], [], color="0.3", marker="_", ms=14, mew=1, ls="none", label="words/s: range over sittings"))
    handles.append(Line2D([], [], color="0.3", ls=":", label="span_finder + spancat's F1 (its colour)"))
    if any(not point.kept for point in plotted):
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", ls="none",
                              label=f"{NOT_KEPT} counts not kept: no interval"))
    if any(point.int8 for point in plotted):
        handles.append(Line2D([], [], color="0.6", marker="o", markeredgecolor="black", markeredgewidth=1.8,
                              ls="none", label="int8"))
    legend = ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    renderer = canvas.get_renderer()
    to_display = ax.transData.transform
    obstacles, own = [legend.get_window_extent(renderer)], []
    half = MARKER_SIZE / 2 * fig.dpi / 72 + 1
    for point in plotted:
        centre = to_display((point.x, point.f1))
        own.append(Bbox([centre - half, centre + half]))
        obstacles.append(own[-1])
        obstacles.append(Bbox([to_display((min(point.words), point.f1)) - (0, 1.5),
                               to_display((max(point.words), point.f1)) + (0, 1.5)]))
        obstacles.append(Bbox([to_display((point.x, point.low)) - (1.5, 0), to_display((point.x, point.high)) + (1.5, 0)]))
    place_labels(ax, plotted, renderer, obstacles, own)
    return fig


def svg(fig: "Figure") -> bytes:
    """The SVG of ``fig``, the same bytes on every run (fixed hash salt, no date)."""
    import matplotlib

    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": HASH_SALT, "svg.fonttype": "path"}):
        fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return out.getvalue()


def render(figures: Optional[Dict[str, Any]] = None) -> bytes:
    """What ``python bench/frontier.py`` writes to docs/frontier.svg."""
    figures = figures if figures is not None else load_figures()
    return svg(draw(figures, points(figures)))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=CHART, help="the chart to write (default docs/frontier.svg)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the chart is not up to date")
    args = parser.parse_args(argv)
    chart = render()
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current == chart:
            print(f"{args.output} is up to date")
            return 0
        import matplotlib

        written_by = re.search(rb"Matplotlib v([^,\s]+)", current)
        if written_by and written_by.group(1).decode() != matplotlib.__version__:
            print(f"(written by matplotlib {written_by.group(1).decode()}, this is {matplotlib.__version__}: "
                  "the bytes differ between versions)")
        print(f"{args.output} is stale: run python bench/frontier.py")
        return 1
    args.output.write_bytes(chart)
    print(f"wrote {args.output} ({len(points(load_figures()))} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
