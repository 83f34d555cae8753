"""displaCy rendering of nested spans.

``spacy evaluate --displacy-path`` only renders span HTML for a component
literally named "spancat", so we render ours here. `GENIA_COLORS` is also
exposed through the ``spacy_displacy_colors`` entry point.

With ``show_scores=True`` each span's label carries its score from
``doc.spans[key].attrs["scores"]`` (``protein 0.93``), through displaCy's
manual span format; the colour stays the label's. Spans without scores
(gold docs, say) keep their plain label.
"""

import html
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from spacy import displacy
from spacy.displacy.render import SpanRenderer
from spacy.tokens import Doc

GENIA_COLORS: Dict[str, str] = {
    "DNA": "#7aecec",
    "RNA": "#bfe1d9",
    "protein": "#feca74",
    "cell_line": "#c887fb",
    "cell_type": "#ff9561",
}


def render_spans(
    docs: Union[Doc, Iterable[Doc]],
    spans_key: str = "nested",
    page: bool = True,
    *,
    colors: Optional[Dict[str, str]] = None,
    show_scores: bool = False,
    score_digits: int = 2,
) -> str:
    """Render the spans in ``doc.spans[spans_key]`` as HTML (one section per Doc).

    colors (Optional[Dict[str, str]]): label -> CSS color; GENIA_COLORS by default.
    show_scores (bool): label each span with its score too (``protein 0.93``),
        where the span group has ``attrs["scores"]``, one per span.
    score_digits (int): decimals of the scores shown.
    """
    if isinstance(docs, Doc):
        docs = [docs]
    colors = dict(GENIA_COLORS if colors is None else colors)
    options: Dict[str, Any] = {"spans_key": spans_key, "colors": colors}
    if not show_scores:
        return displacy.render(list(docs), style="span", page=page, jupyter=False, options=options)
    parsed = [scored_spans(doc, spans_key, colors, score_digits) for doc in docs]
    return displacy.render(parsed, style="span", page=page, jupyter=False, options=options, manual=True)


def scored_spans(doc: Doc, spans_key: str, colors: Dict[str, str], digits: int = 2) -> Dict[str, Any]:
    """displaCy's manual span data for `doc`, each label followed by its span's score.

    Adds the colour of each plain label (`colors`, else displaCy's defaults and
    registered colours) to `colors` under the label shown: displaCy looks
    colours up by the label it prints.
    """
    parsed: Dict[str, Any] = displacy.parse_spans(doc, {"spans_key": spans_key})
    group = doc.spans.get(spans_key)
    scores = group.attrs.get("scores") if group is not None else None
    if scores is None or len(scores) != len(parsed["spans"]):
        return parsed
    known = SpanRenderer(options={"colors": colors}).colors  # upper-cased labels, as displaCy keys them
    for span, score in zip(parsed["spans"], scores):
        label = span["label"]
        span["label"] = f"{label} {float(score):.{digits}f}"
        if label.upper() in known:
            colors[span["label"]] = known[label.upper()]
    return parsed


def render_comparison(
    gold: Sequence[Doc],
    predicted: Sequence[Doc],
    spans_key: str = "nested",
    *,
    title: str = "predictions",
    colors: Optional[Dict[str, str]] = None,
    show_scores: bool = False,
) -> str:
    """One HTML page: for each doc, its gold spans above the predicted ones.

    show_scores (bool): label each predicted span with its score too.
    """
    sections: List[str] = [f"<h1>{html.escape(title)}</h1>"]
    for i, (g, p) in enumerate(zip(gold, predicted)):
        sections.append(f"<h2>doc {i}: gold</h2>")
        sections.append(render_spans(g, spans_key, page=False, colors=colors))
        sections.append(f"<h2>doc {i}: predicted</h2>")
        sections.append(render_spans(p, spans_key, page=False, colors=colors, show_scores=show_scores))
    body = "\n".join(sections)
    head = f'<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
    return f'<!DOCTYPE html>\n<html lang="en">{head}\n<body style="font-family: sans-serif">{body}</body></html>\n'
