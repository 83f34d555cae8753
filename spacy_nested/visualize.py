"""displaCy rendering of nested spans.

``spacy evaluate --displacy-path`` only renders span HTML for a component
literally named "spancat", so we render ours here. `GENIA_COLORS` is also
exposed through the ``spacy_displacy_colors`` entry point.
"""

import html
from typing import Dict, Iterable, List, Optional, Sequence, Union

from spacy import displacy
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
) -> str:
    """Render the spans in ``doc.spans[spans_key]`` as HTML (one section per Doc).

    colors (Optional[Dict[str, str]]): label -> CSS color; GENIA_COLORS by default.
    """
    if isinstance(docs, Doc):
        docs = [docs]
    options = {"spans_key": spans_key, "colors": GENIA_COLORS if colors is None else colors}
    return displacy.render(list(docs), style="span", page=page, jupyter=False, options=options)


def render_comparison(
    gold: Sequence[Doc],
    predicted: Sequence[Doc],
    spans_key: str = "nested",
    *,
    title: str = "predictions",
    colors: Optional[Dict[str, str]] = None,
) -> str:
    """One HTML page: for each doc, its gold spans above the predicted ones."""
    sections: List[str] = [f"<h1>{html.escape(title)}</h1>"]
    for i, (g, p) in enumerate(zip(gold, predicted)):
        sections.append(f"<h2>doc {i}: gold</h2>")
        sections.append(render_spans(g, spans_key, page=False, colors=colors))
        sections.append(f"<h2>doc {i}: predicted</h2>")
        sections.append(render_spans(p, spans_key, page=False, colors=colors))
    body = "\n".join(sections)
    head = f'<head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
    return f'<!DOCTYPE html>\n<html lang="en">{head}\n<body style="font-family: sans-serif">{body}</body></html>\n'
