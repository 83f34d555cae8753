"""The format-independent sentence record, and its conversion to Docs.

Every reader in `spacy_nested.corpora.formats` yields `NestedSentence` objects;
`sentences_to_docs` turns them into Docs with the gold spans in
``doc.spans[spans_key]``, ready for a DocBin.
"""

from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span, SpanGroup
from spacy.vocab import Vocab

from spacy_nested.corpora.tokenizer import doc_from_tokens

LabeledSpan = Tuple[int, int, str]  # half-open token offsets [start, end) + label
GROUP_BY_OPTIONS = ("doc_id",)


@dataclass
class NestedSentence:
    """One pre-tokenized sentence with its (possibly nested) gold mentions.

    `spans` are half-open token offsets ``(start, end, label)``. The same
    boundaries may appear with several labels; exact duplicates do not.
    `spaces` says whether each token is followed by a space, for text from a
    language tokenizer (BRAT); None (the default) means tokens joined by
    single spaces, which the whitespace tokenizer gives back.
    `sent_starts` are the tokens that start a sentence, for a record that
    holds several (a BRAT document: one a line); 0 first, ascending. None
    (the default) means the record is one sentence.
    """

    tokens: List[str]
    spans: List[LabeledSpan] = field(default_factory=list)
    doc_id: Optional[str] = None
    sent_id: Optional[str] = None
    spaces: Optional[List[bool]] = None
    sent_starts: Optional[List[int]] = None

    def __post_init__(self) -> None:
        if self.spaces is not None and len(self.spaces) != len(self.tokens):
            raise ValueError(f"{len(self.spaces)} spaces for {len(self.tokens)} tokens")
        if self.sent_starts is not None:
            _check_sent_starts(self.sent_starts, len(self.tokens))


def _check_sent_starts(starts: List[int], n_tokens: int) -> None:
    ascending = all(a < b for a, b in zip(starts, starts[1:]))
    if not starts or starts[0] != 0 or not ascending or starts[-1] >= n_tokens:
        raise ValueError(
            f"sentence starts {starts} for {n_tokens} tokens: expected 0 first, ascending, "
            "each a token index"
        )


def split_whitespace_tokens(
    tokens: Sequence[str], spans: Sequence[LabeledSpan]
) -> Tuple[List[str], List[LabeledSpan], List[int]]:
    """Split tokens that contain whitespace and remap the span offsets.

    Returns the new tokens, the remapped spans and the indices (in `tokens`)
    of the tokens that were split. A token made only of whitespace raises
    ValueError: it would vanish, and so could a span covering it.
    """
    new_tokens: List[str] = []
    starts: List[int] = []  # starts[i]: index of old token i in new_tokens
    split: List[int] = []
    for i, token in enumerate(tokens):
        pieces = token.split()
        if not pieces:
            raise ValueError(f"tokens[{i}] {token!r} is empty or only whitespace")
        if len(pieces) > 1 or pieces[0] != token:
            split.append(i)
        starts.append(len(new_tokens))
        new_tokens.extend(pieces)
    starts.append(len(new_tokens))
    new_spans = [(starts[start], starts[end], label) for start, end, label in spans]
    return new_tokens, new_spans, split


def sentences_to_docs(
    sentences: Iterable[NestedSentence],
    vocab: Vocab,
    spans_key: str = "nested",
    group_by: Optional[str] = None,
) -> Iterator[Doc]:
    """Convert sentences to Docs with gold spans in ``doc.spans[spans_key]``.

    group_by (Optional[str]): None for one Doc per sentence. "doc_id" joins
        consecutive sentences with the same (non-None) doc_id into one Doc,
        sets ``is_sent_start`` on every token and offsets the spans.
    A record with `sent_starts` (BRAT) always gets its sentence starts set.
    """
    if group_by is None:
        for sentence in sentences:
            yield _make_doc([sentence], vocab, spans_key, set_sents=False)
    elif group_by == "doc_id":
        for _, group in groupby(_number_missing_ids(sentences), key=lambda item: item[0]):
            batch = [sentence for _, sentence in group]
            yield _make_doc(batch, vocab, spans_key, set_sents=True)
    else:
        raise ValueError(
            f"Unknown group_by {group_by!r}: expected None or one of {GROUP_BY_OPTIONS}"
        )


def _number_missing_ids(
    sentences: Iterable[NestedSentence],
) -> Iterator[Tuple[object, NestedSentence]]:
    """Pair sentences with a grouping key; a missing doc_id never groups."""
    for i, sentence in enumerate(sentences):
        key = ("id", sentence.doc_id) if sentence.doc_id is not None else ("none", i)
        yield key, sentence


def _make_doc(
    sentences: Sequence[NestedSentence], vocab: Vocab, spans_key: str, *, set_sents: bool
) -> Doc:
    tokens: List[str] = []
    spans: List[LabeledSpan] = []
    sent_starts: List[int] = []
    for sentence in sentences:
        offset = len(tokens)
        sent_starts.extend(offset + start for start in sentence.sent_starts or [0])
        tokens.extend(sentence.tokens)
        spans.extend((start + offset, end + offset, label) for start, end, label in sentence.spans)
    doc = doc_from_tokens(vocab, tokens, _join_spaces(sentences))
    if set_sents or any(sentence.sent_starts is not None for sentence in sentences):
        starts = set(sent_starts)
        for token in doc:
            token.is_sent_start = token.i in starts
    group = [Span(doc, start, end, label=label) for start, end, label in spans]
    doc.spans[spans_key] = SpanGroup(doc, name=spans_key, spans=group)
    return doc


def _join_spaces(sentences: Sequence[NestedSentence]) -> Optional[List[bool]]:
    """The spaces of the joined tokens; None when no sentence carries spaces.

    A sentence without spaces counts as tokens joined by single spaces and,
    unless it ends the Doc, followed by one.
    """
    if all(sentence.spaces is None for sentence in sentences):
        return None
    spaces: List[bool] = []
    for sentence in sentences:
        if sentence.spaces is not None:
            spaces.extend(sentence.spaces)
        else:
            spaces.extend([True] * len(sentence.tokens))
    if sentences[-1].spaces is None and sentences[-1].tokens:
        spaces[-1] = False
    return spaces


def input_files(path: Path, patterns: Sequence[str]) -> List[Path]:
    """`path` itself, or the files of directory `path` matching `patterns`, sorted.

    RAISES (FileNotFoundError): for a directory without such files.
    """
    if not path.is_dir():
        return [path]
    files = sorted({file_ for pattern in patterns for file_ in path.glob(pattern) if file_.is_file()})
    if not files:
        raise FileNotFoundError(f"no {' or '.join(patterns)} files in {path}")
    return files
