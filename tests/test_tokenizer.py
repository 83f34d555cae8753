"""Tests for the whitespace tokenizer and `doc_from_tokens`."""

import pickle

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.util import registry

from spacy_nested.tokenizer import (
    WhitespaceTokenizer,
    create_whitespace_tokenizer,
    doc_from_tokens,
    validate_tokens,
)

TOKENIZER_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}}
_TOKENIZER = WhitespaceTokenizer(spacy.blank("en").vocab)  # shared by the property tests


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en", config=TOKENIZER_CONFIG)


def test_registered():
    assert (
        registry.tokenizers.get("spacy_nested.WhitespaceTokenizer.v1")
        is create_whitespace_tokenizer
    )


def test_blank_pipeline_uses_tokenizer(nlp):
    assert isinstance(nlp.tokenizer, WhitespaceTokenizer)
    doc = nlp("IL-2 gene expression , (PHA)")
    assert [t.text for t in doc] == ["IL-2", "gene", "expression", ",", "(PHA)"]
    assert doc.text == "IL-2 gene expression , (PHA)"
    assert not doc[-1].whitespace_


@pytest.mark.parametrize(
    "text,words",
    [
        ("", []),
        ("a", ["a"]),
        ("a b", ["a", "b"]),
        ("a  b", ["a", " ", "b"]),
        (" a", [" ", "a"]),
        ("a ", ["a"]),
        ("  ", [" ", " "]),
        ("a\tb c\n", ["a\tb", "c\n"]),
    ],
)
def test_round_trip_text(nlp, text, words):
    doc = nlp.tokenizer(text)
    assert doc.text == text
    assert [t.text for t in doc] == words


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab- \t\n\u00a0é")))
def test_round_trip_any_text(text):
    doc = _TOKENIZER(text)
    assert doc.text == text
    assert all(t.text for t in doc)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab-().,é1"), min_size=1), max_size=20))
def test_tokens_round_trip(tokens):
    doc = doc_from_tokens(_TOKENIZER.vocab, tokens)
    assert [t.text for t in doc] == tokens
    assert doc.text == " ".join(tokens)
    assert [t.text for t in _TOKENIZER(doc.text)] == tokens


def test_doc_from_tokens_spaces(nlp):
    doc = doc_from_tokens(nlp.vocab, ["a", "b", "c"])
    assert [t.whitespace_ for t in doc] == [" ", " ", ""]
    assert len(doc_from_tokens(nlp.vocab, [])) == 0


@pytest.mark.parametrize(
    "tokens,message",
    [
        (["a", ""], "token 1 is empty"),
        (["ER- cells"], "token 0 'ER- cells' contains whitespace"),
        (["a\tb"], "contains whitespace"),
        (["a\u00a0b"], "contains whitespace"),
        (["a", 3], "token 1 must be a string, got int"),
    ],
)
def test_doc_from_tokens_rejects(nlp, tokens, message):
    with pytest.raises(ValueError, match=message):
        doc_from_tokens(nlp.vocab, tokens)
    with pytest.raises(ValueError, match=message):
        validate_tokens(tokens)


def test_to_disk_and_load(nlp, tmp_path):
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert isinstance(loaded.tokenizer, WhitespaceTokenizer)
    assert loaded.config["nlp"]["tokenizer"] == {
        "@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"
    }
    assert [t.text for t in loaded("a-b  c")] == ["a-b", " ", "c"]


def test_to_bytes_and_pickle(nlp):
    other = spacy.blank("en", config=TOKENIZER_CONFIG).from_bytes(nlp.to_bytes())
    assert isinstance(other.tokenizer, WhitespaceTokenizer)
    tokenizer = WhitespaceTokenizer(nlp.vocab).from_bytes(nlp.tokenizer.to_bytes())
    assert [t.text for t in tokenizer("x y")] == ["x", "y"]
    copy = pickle.loads(pickle.dumps(nlp.tokenizer))
    assert copy("x y").text == "x y"


def test_pipe(nlp):
    assert [doc.text for doc in nlp.pipe(["a b", "", "c"])] == ["a b", "", "c"]
