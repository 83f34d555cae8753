"""Property-based round trips: random sentences written in a format, read back.

Random tokens (no whitespace) carry random nested span sets (empty ones,
spans sharing a boundary, the same boundaries with two labels). Each test
writes them with a small writer below, reads them back with the package's
reader and checks that the tokens and the span sets are unchanged: CoNLL
(IOB2, one tag column per nesting layer), BRAT (``.txt`` + ``.ann``), and
yhcc JSON lines through the ``convert`` command into a DocBin. (The
JSON-lines readers alone have their round trip in test_jsonl.py.)
"""

import json
import tempfile
import warnings
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.corpora.formats import FormatWarning, NestedSentence, read_brat, read_conll
from spacy_nested.corpora.tokenizer import WhitespaceTokenizer

Span = Tuple[int, int, str]
NLP = spacy.blank("en")
LABELS = ("DNA", "protein", "cell_type")
SETTINGS = settings(max_examples=50, deadline=None)

# Letters, digits, punctuation and symbols: never whitespace, never a BOM.
TOKEN = st.text(
    st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=5
).filter(lambda token: token != "-DOCSTART-")


@st.composite
def spans_of(draw, n_tokens: int) -> List[Span]:
    """A set of (possibly nested, overlapping or coinciding) labeled spans."""
    bounds = st.integers(0, n_tokens - 1).flatmap(
        lambda start: st.tuples(st.just(start), st.integers(start + 1, n_tokens))
    )
    span = st.builds(lambda b, label: (*b, label), bounds, st.sampled_from(LABELS))
    return draw(st.lists(span, max_size=8, unique=True))


@st.composite
def sentences(draw) -> NestedSentence:
    tokens = draw(st.lists(TOKEN, min_size=1, max_size=10))
    return NestedSentence(tokens, draw(spans_of(len(tokens))))


CORPORA = st.lists(sentences(), min_size=1, max_size=3)


# --- writers ----------------------------------------------------------------


def layers(spans: Sequence[Span]) -> List[List[Span]]:
    """Spans in layers of non-overlapping spans, outer ones first (greedy)."""
    result: List[List[Span]] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1], s[2])):
        free = (layer for layer in result if all(span[0] >= e or span[1] <= s for s, e, _ in layer))
        layer = next(free, None)
        if layer is None:
            result.append([span])
        else:
            layer.append(span)
    return result


def iob2_column(n_tokens: int, layer: Sequence[Span]) -> List[str]:
    tags = ["O"] * n_tokens
    for start, end, label in layer:
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    return tags


def write_conll(path: Path, corpus: Sequence[NestedSentence]) -> int:
    """Write IOB2 with one tag column per layer; return the number of tag columns."""
    by_sentence = [layers(sentence.spans) for sentence in corpus]
    n_columns = max(1, *(len(sentence_layers) for sentence_layers in by_sentence))
    blocks = []
    for sentence, sentence_layers in zip(corpus, by_sentence):
        n = len(sentence.tokens)
        columns = [iob2_column(n, layer) for layer in sentence_layers]
        columns += [["O"] * n] * (n_columns - len(columns))
        rows = zip(sentence.tokens, *columns)
        blocks.append("".join(" ".join(row) + "\n" for row in rows))
    path.write_text("-DOCSTART- -X- O\n\n" + "\n".join(blocks), encoding="utf8")
    return n_columns


def write_brat(directory: Path, name: str, sentence: NestedSentence) -> Path:
    """Write the tokens joined by single spaces, and one T line per span."""
    text = " ".join(sentence.tokens)
    starts = [0]
    for token in sentence.tokens:
        starts.append(starts[-1] + len(token) + 1)
    lines = [
        f"T{i}\t{label} {starts[start]} {starts[end] - 1}\t{' '.join(sentence.tokens[start:end])}\n"
        for i, (start, end, label) in enumerate(sentence.spans, start=1)
    ]
    (directory / f"{name}.txt").write_text(text, encoding="utf8")
    (directory / f"{name}.ann").write_text("".join(lines), encoding="utf8")
    return directory / f"{name}.ann"


def write_yhcc(path: Path, corpus: Sequence[NestedSentence]) -> None:
    records = [
        {
            "tokens": sentence.tokens,
            "entity_mentions": [
                {"start": s, "end": e, "entity_type": t, "text": " ".join(sentence.tokens[s:e])}
                for s, e, t in sentence.spans
            ],
        }
        for sentence in corpus
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf8")


# --- round trips --------------------------------------------------------------


@SETTINGS
@given(CORPORA, st.sampled_from(["auto", "iob2"]))
def test_conll_round_trip(corpus, scheme):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.conll"
        n_columns = write_conll(path, corpus)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FormatWarning)  # valid IOB2: nothing repaired
            read = list(read_conll(path, scheme, tag_columns=n_columns))
    assert [s.tokens for s in read] == [s.tokens for s in corpus]
    assert [sorted(s.spans) for s in read] == [sorted(s.spans) for s in corpus]
    assert [s.sent_id for s in read] == [f"x.conll:0-{i}" for i in range(len(corpus))]


@SETTINGS
@given(sentences())
def test_brat_round_trip(sentence):
    with tempfile.TemporaryDirectory() as tmp:
        write_brat(Path(tmp), "doc", sentence)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FormatWarning)  # nothing misaligned
            (read,) = read_brat(Path(tmp), WhitespaceTokenizer(NLP.vocab))
    assert read.tokens == sentence.tokens
    assert read.spans == sentence.spans
    assert read.spaces == [True] * (len(sentence.tokens) - 1) + [False]


@pytest.mark.slow
@SETTINGS
@given(CORPORA)
def test_convert_yhcc_round_trip(corpus):
    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp) / "x.jsonl", Path(tmp) / "x.spacy"
        write_yhcc(source, corpus)
        result = CliRunner().invoke(app, ["convert", str(source), str(output), "-f", "yhcc"])
        assert result.exit_code == 0, result.output
        docs = list(DocBin().from_disk(output).get_docs(NLP.vocab))
    assert [[t.text for t in doc] for doc in docs] == [s.tokens for s in corpus]
    assert [[(s.start, s.end, s.label_) for s in doc.spans["nested"]] for doc in docs] == [
        s.spans for s in corpus
    ]
