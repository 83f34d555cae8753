"""Tests for the whitespace tokenizer, `doc_from_tokens`, the biomedical tokenizer for raw text
and the reader that trains on the corpus's tokens."""

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, DocBin, Span
from spacy.util import load_config, load_model_from_config, registry

from spacy_nested.corpora.biomedical_tokenizer import create_biomedical_tokenizer
from spacy_nested.corpora.tokenizer import (
    WhitespaceTokenizer,
    create_gold_tokens_corpus,
    create_whitespace_tokenizer,
    doc_from_tokens,
    validate_tokens,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

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


# --- spacy_nested.BiomedicalTokenizer.v1: raw text cut as GENIA cuts it ---------

BIOMEDICAL = "spacy_nested.BiomedicalTokenizer.v1"
BIOMEDICAL_CONFIG = {"nlp": {"tokenizer": {"@tokenizers": BIOMEDICAL}}}
# Raw text as in GENIA abstracts, and the tokens GENIA has for it.
RAW_TEXTS = [
    (
        "IL-2 gene expression requires NF-kappa B (NFAT).",
        ["IL-2", "gene", "expression", "requires", "NF-kappa", "B", "(", "NFAT", ")", "."],
    ),
    (
        'In "pure" progenitors [see (1)], {IL-6}; cells: the cell\'s receptor?',
        ["In", '"', "pure", '"', "progenitors", "[", "see", "(", "1", ")", "]", ",", "{", "IL-6", "}", ";",
         "cells", ":", "the", "cell", "'s", "receptor", "?"],
    ),
    (
        "Ca2+ and CD4+ T cells, Ca(2+)-dependent (Ca2+)i rise, Na(+)-H(+)-antiport.",
        ["Ca2+", "and", "CD4+", "T", "cells", ",", "Ca(2+)-dependent", "(Ca2+)i", "rise", ",", "Na(+)-H(+)-antiport", "."],
    ),
    (
        "[3H]thymidine and [3H] dexamethasone, 1,25(OH)2D3 (1,25(OH)2D3) and (CT)19/(CA)16.",
        ["[3H]thymidine", "and", "[3H]", "dexamethasone", ",", "1,25(OH)2D3", "(", "1,25(OH)2D3", ")", "and",
         "(CT)19/(CA)16", "."],
    ),
    (
        "anti-CD2-activated CD4/CD8 T-cells, the 5'-flanking and 3' regions, 14.7-18.7 kD, "
        "alpha,25-dihydroxyvitamin D3 and TF.VIIa",
        ["anti-CD2-activated", "CD4/CD8", "T-cells", ",", "the", "5'-flanking", "and", "3'", "regions", ",",
         "14.7-18.7", "kD", ",", "alpha,25-dihydroxyvitamin", "D3", "and", "TF.VIIa"],
    ),
    (
        "50% of cells (P<0.05, n = 4) vs. 12 +/- 3%, e.g. >90% in 10kD.",
        ["50", "%", "of", "cells", "(", "P<0.05", ",", "n", "=", "4", ")", "vs.", "12", "+/-", "3", "%", ",",
         "e.g.", ">90", "%", "in", "10kD", "."],
    ),
    (
        "p50(NF-kappa B) binds the Ca(2+)-dependent site",
        ["p50", "(", "NF-kappa", "B", ")", "binds", "the", "Ca(2+)-dependent", "site"],
    ),
    (
        "Id proteins don't bind Oct. NF-kappaB/Rel binds c-Jun.",
        ["Id", "proteins", "do", "n't", "bind", "Oct", ".", "NF-kappaB/Rel", "binds", "c-Jun", "."],
    ),
]


@pytest.fixture(scope="module")
def bio_nlp():
    return spacy.blank("en", config=BIOMEDICAL_CONFIG)


def test_biomedical_registered():
    assert registry.tokenizers.get(BIOMEDICAL) is create_biomedical_tokenizer
    assert registry.readers.get("spacy_nested.GoldTokensCorpus.v1") is create_gold_tokens_corpus


@pytest.mark.parametrize("text,expected", RAW_TEXTS)
def test_biomedical_splits_punctuation_and_keeps_names_whole(bio_nlp, text, expected):
    doc = bio_nlp(text)
    assert [t.text for t in doc] == expected
    assert doc.text == text


def _tokens(nlp):
    return [[t.text for t in nlp(text)] for text, _ in RAW_TEXTS]


def test_biomedical_to_disk_and_load(bio_nlp, tmp_path):
    bio_nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert type(loaded.tokenizer) is Tokenizer
    assert loaded.config["nlp"]["tokenizer"] == {"@tokenizers": BIOMEDICAL}
    assert _tokens(loaded) == [expected for _, expected in RAW_TEXTS]


def test_biomedical_to_bytes_and_pickle(bio_nlp):
    other = spacy.blank("en", config=BIOMEDICAL_CONFIG).from_bytes(bio_nlp.to_bytes())
    assert _tokens(other) == [expected for _, expected in RAW_TEXTS]
    tokenizer = Tokenizer(bio_nlp.vocab).from_bytes(bio_nlp.tokenizer.to_bytes())  # the rules travel in the bytes
    assert [t.text for t in tokenizer(RAW_TEXTS[2][0])] == RAW_TEXTS[2][1]
    copy = pickle.loads(pickle.dumps(bio_nlp.tokenizer))
    assert [t.text for t in copy(RAW_TEXTS[0][0])] == RAW_TEXTS[0][1]


@pytest.mark.slow
def test_biomedical_pipeline_packages_and_loads(bio_nlp, tmp_path):
    """``spacy package`` names spacy-nested as a requirement, and the packaged data loads.

    ``--build none``: building the sdist or wheel is Python packaging that the tokenizer does not
    change (``tests/test_portability.py`` builds and installs a wheel).
    """
    bio_nlp.to_disk(tmp_path / "model")
    out = tmp_path / "packages"
    out.mkdir()
    args = ["--name", "biomedical_test", "--version", "0.0.1", "--build", "none", "--force"]
    done = subprocess.run(
        [sys.executable, "-m", "spacy", "package", tmp_path / "model", out, *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    package = out / "en_biomedical_test-0.0.1"
    meta = srsly.read_json(package / "meta.json")
    assert any(req.startswith("spacy-nested") for req in meta["requirements"]), meta["requirements"]
    loaded = spacy.load(package / "en_biomedical_test" / "en_biomedical_test-0.0.1")
    assert _tokens(loaded) == [expected for _, expected in RAW_TEXTS]


# --- the shipped configs: raw text through the biomedical tokenizer, training on gold tokens ---

SHIPPED_CONFIGS = sorted((REPO_ROOT / "configs").glob("*.cfg"))


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_tokenize_raw_text_and_train_on_gold_tokens(path):
    config = load_config(path)
    assert config["nlp"]["tokenizer"] == {"@tokenizers": BIOMEDICAL}
    for corpus in ("train", "dev"):
        assert config["corpora"][corpus]["@readers"] == "spacy_nested.GoldTokensCorpus.v1"


def test_pipeline_from_shipped_config_tokenizes_raw_text():
    assert SHIPPED_CONFIGS
    nlp = load_model_from_config(load_config(REPO_ROOT / "configs" / "genia_locate_label_cpu.cfg"), auto_fill=True)
    assert "locate_label_ner" in nlp.pipe_names
    assert [[t.text for t in nlp.make_doc(text)] for text, _ in RAW_TEXTS] == [expected for _, expected in RAW_TEXTS]


def _gold_doc(vocab, words, spans, sent_starts=None):
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc.spans["nested"] = [Span(doc, start, end, label=label) for start, end, label in spans]
    return doc


def test_gold_tokens_corpus_keeps_the_corpus_tokens_and_whole_docs(bio_nlp, tmp_path):
    """Docs of several sentences stay whole with their spans; predicted tokens are the gold ones.

    spaCy's ``gold_preproc`` would split the first doc in two and drop its spans
    (``Span.as_doc`` does not copy ``doc.spans``), and the biomedical tokenizer
    would cut ``S.`` in two.
    """
    vocab = bio_nlp.vocab
    two_sentences = _gold_doc(
        vocab,
        ["IL-2", "binds", "in", "S.", "cerevisiae", ".", "NF-kappa", "B", "(", "p50", ")", "."],
        [(0, 1, "protein"), (6, 8, "protein"), (9, 10, "protein")],
        sent_starts=[True] + [False] * 5 + [True] + [False] * 5,
    )
    one_sentence = _gold_doc(vocab, ["Ca(2+)-dependent", "IL-2", "gene"], [(1, 2, "protein"), (1, 3, "DNA")])
    path = tmp_path / "gold.spacy"
    DocBin(docs=[two_sentences, one_sentence], store_user_data=True).to_disk(path)
    assert [t.text for t in bio_nlp(two_sentences.text)] != [t.text for t in two_sentences]  # "S", "."

    examples = list(create_gold_tokens_corpus(path)(bio_nlp))
    assert len(examples) == 2
    for example, gold in zip(examples, [two_sentences, one_sentence]):
        assert [t.text for t in example.predicted] == [t.text for t in gold]
        assert example.predicted.text == gold.text
        assert [(s.start, s.end, s.label_) for s in example.reference.spans["nested"]] == [
            (s.start, s.end, s.label_) for s in gold.spans["nested"]
        ]
    assert examples[0].reference.has_annotation("SENT_START")
    assert len(list(create_gold_tokens_corpus(path, limit=1)(bio_nlp))) == 1
    with pytest.raises(ValueError, match="No path"):
        create_gold_tokens_corpus(None)


# --- GENIA dev as raw text (bench/raw_text.py): the figures the README reports ----


def _raw_text_bench():
    spec = importlib.util.spec_from_file_location("raw_text_bench", REPO_ROOT / "bench" / "raw_text.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detokenize_attaches_punctuation():
    bench = _raw_text_bench()
    tokens = ["IL-2", "(", "p50", ")", ",", '"', "pure", '"', "cell", "'s", "50", "%", "."]
    text, offsets, _ = bench.detokenize(tokens)
    assert text == 'IL-2 (p50), "pure" cell\'s 50%.'
    assert [text[start:end] for start, end in offsets] == tokens


def test_genia_dev_as_raw_text(shared_data):
    dev = shared_data / "genia" / "dev.jsonl"
    if not dev.exists():
        pytest.skip(f"{dev} not found")
    bench = _raw_text_bench()
    sentences = bench.load_sentences(dev)
    figures = bench.tokenizer_figures(bench.make_tokenizer("biomedical"), sentences)
    assert figures["n_entities"] > 4000
    assert figures["boundaries_kept"] >= 99.8
    assert figures["tokens_identical"] >= 99.0
