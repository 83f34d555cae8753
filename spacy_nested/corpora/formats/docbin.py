"""Writing converted corpora: a summary of what was converted, and an
all-or-nothing DocBin writer (a temporary file in the target directory,
renamed over the target only once everything is serialized).
"""

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Union

from spacy.tokens import Doc, DocBin


@dataclass
class ConversionSummary:
    """Counts over converted Docs: docs, sentences, spans and spans per label.

    What a DocBin of the Docs holds: a Doc's sentences are those its sentence
    starts make (``doc.sents``), or the Doc itself when none are set.
    """

    n_docs: int = 0
    n_sentences: int = 0
    n_spans: int = 0
    labels: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_docs(cls, docs: Iterable[Doc], spans_key: str) -> "ConversionSummary":
        counts: Counter[str] = Counter()
        n_docs = n_sentences = 0
        for doc in docs:
            n_docs += 1
            n_sentences += count_sentences(doc)
            counts.update(span.label_ for span in doc.spans.get(spans_key, []))
        labels = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        return cls(n_docs, n_sentences, sum(counts.values()), labels)

    def __str__(self) -> str:
        labels = ", ".join(f"{label} {count:,}" for label, count in self.labels.items())
        return (
            f"{self.n_docs:,} docs, {self.n_sentences:,} sentences, {self.n_spans:,} spans, "
            f"{len(self.labels)} labels ({labels or 'none'})"
        )


def count_sentences(doc: Doc) -> int:
    """The sentences of `doc`: by its sentence starts when set; else 1 (0 for an empty Doc)."""
    if doc.has_annotation("SENT_START"):
        return sum(1 for _ in doc.sents)
    return 1 if len(doc) else 0


def write_docbin(
    docs: Iterable[Doc], path: Union[str, Path], *, store_user_data: bool = True
) -> Path:
    """Serialize `docs` to a `.spacy` DocBin at `path`, all or nothing.

    The Docs are serialized first, then written to a temporary file next to
    `path` and renamed over it, so `path` is never left half-written.
    """
    path = Path(path)
    data = DocBin(docs=docs, store_user_data=store_user_data).to_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file_:
            file_.write(data)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path
