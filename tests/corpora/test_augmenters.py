"""``spacy_nested.copy_spans.v1``: the gold of one key under the member keys, as a training corpus reads it."""
from importlib.metadata import entry_points

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import registry

from spacy_nested.corpora.augmenters import make_span_copier
from spacy_nested.corpora.tokenizer import create_gold_tokens_corpus
from tests.detectors.nested_fixture import SENTENCES, make_doc

MEMBERS = ["nested_ll", "nested_bo", "nested_pr"]


def triples(doc, key):
    return [(s.start, s.end, s.label_) for s in doc.spans[key]]


def test_the_gold_is_copied_to_every_target_key_and_the_example_left_alone():
    nlp = spacy.blank("en")
    text, spans = SENTENCES[0]
    example = Example(nlp.make_doc(text), make_doc(nlp.vocab, text, spans))
    gold = triples(example.reference, "nested")
    assert len(gold) >= 2
    (copied,) = make_span_copier("nested", MEMBERS)(nlp, example)
    assert all(triples(copied.reference, key) == gold for key in MEMBERS)
    assert triples(copied.reference, "nested") == gold
    assert copied.predicted is example.predicted and [t.text for t in copied.reference] == [t.text for t in example.reference]
    assert sorted(example.reference.spans.keys()) == ["nested"]  # the input example's reference is not changed
    # a reference without the source key passes unchanged
    bare = Example(nlp.make_doc(text), nlp.make_doc(text))
    assert list(make_span_copier("nested", MEMBERS)(nlp, bare)) == [bare]


@pytest.mark.parametrize(
    "source,targets,message",
    [("nested", [], "no target keys"), ("nested", ["nested", "a"], "also a target"), ("nested", ["a", "a"], "repeated")],
)
def test_bad_keys_are_refused(source, targets, message):
    with pytest.raises(ValueError, match=message):
        make_span_copier(source, targets)


def test_a_training_corpus_config_names_it(tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=[make_doc(nlp.vocab, text, spans) for text, spans in SENTENCES[:3]]).to_disk(tmp_path / "train.spacy")
    declared = entry_points(group="spacy_augmenters")["spacy_nested.copy_spans.v1"]
    assert declared.value == "spacy_nested.corpora.augmenters:make_span_copier"  # so a config needs no --code
    augmenter = registry.resolve(
        {"a": {"@augmenters": "spacy_nested.copy_spans.v1", "source": "nested", "targets": MEMBERS}}
    )["a"]
    corpus = create_gold_tokens_corpus(tmp_path / "train.spacy", augmenter=augmenter)
    examples = list(corpus(nlp))
    assert len(examples) == 3
    for eg in examples:
        assert triples(eg.reference, "nested_pr") == triples(eg.reference, "nested") != []
