"""displaCy rendering of nested spans.

``spacy evaluate --displacy-path`` only renders span HTML for a component
literally named "spancat", so we render ours here. `GENIA_COLORS` is also
exposed through the ``spacy_displacy_colors`` entry point.
"""

from typing import Dict, Iterable, Optional, Union

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
