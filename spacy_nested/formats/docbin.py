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
    """Counts over converted Docs: docs, sentences, spans and spans per label."""

    n_docs: int = 0
    n_sentences: int = 0
    n_spans: int = 0
    labels: Dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_docs(
        cls, docs: Iterable[Doc], spans_key: str, n_sentences: int
    ) -> "ConversionSummary":
        counts: Counter[str] = Counter()
        n_docs = 0
        for doc in docs:
            n_docs += 1
            counts.update(span.label_ for span in doc.spans.get(spans_key, []))
        labels = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        return cls(n_docs, n_sentences, sum(counts.values()), labels)

    def __str__(self) -> str:
        labels = ", ".join(f"{label} {count:,}" for label, count in self.labels.items())
        return (
            f"{self.n_docs:,} docs, {self.n_sentences:,} sentences, {self.n_spans:,} spans, "
            f"{len(self.labels)} labels ({labels or 'none'})"
        )


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
