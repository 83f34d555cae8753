"""The detectors on 30 real GENIA sentences (skipped without ../shared/data)."""
from itertools import islice

import pytest
from spacy.training import Example

from spacy_nested.corpora.formats.base import sentences_to_docs
from spacy_nested.corpora.formats.jsonl import read_jsonl
from tests.detectors.nested_fixture import build_nlp, train
from tests.detectors.test_common import DETECTORS

# (full-batch updates, learn rate). BOPN's cells are >99% out-of-range on real sentences: at
# Adam's 0.001 it sits on the prior for 120+ full-batch updates of 30 sentences (it learns on
# the full corpus, where an epoch is ~150 updates); at 0.01 it reaches F1 0.9 by 120 updates.
SCHEDULE = {"locate_label_ner": (80, None), "boundary_offset_ner": (120, 0.01), "proposer_regressor_ner": (60, None)}


@pytest.fixture(scope="module")
def genia_docs(shared_data):
    sentences = list(islice(read_jsonl(shared_data / "genia" / "train.jsonl"), 30))
    return sentences


@pytest.mark.slow
@pytest.mark.parametrize("factory", DETECTORS)
def test_learns_on_30_genia_sentences(factory, genia_docs):
    nlp = build_nlp(factory)
    gold = list(sentences_to_docs(genia_docs, nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    assert sum(len(doc.spans["nested"]) for doc in gold) > 50
    n_iter, learn_rate = SCHEDULE[factory]
    losses = train(nlp, examples, n_iter, learn_rate=learn_rate)
    assert losses[-1] < 0.5 * losses[0]
    scores = nlp.evaluate(examples)
    assert scores["spans_nested_f"] > 0.5
    assert set(nlp.get_pipe(factory).labels) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
