"""Pipelines saved by earlier code predict exactly what they predicted then.

tests/fixtures/saved/ holds one small trained pipeline per detector, written by
tests/fixtures/make_saved_pipelines.py at commit 75b836a, with the spans and scores
it predicted then. Refactors must not change a single prediction.
"""
import json
from pathlib import Path

import pytest
import spacy

SAVED = Path(__file__).parent / "fixtures" / "saved"
DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]


@pytest.mark.parametrize("factory", DETECTORS)
def test_saved_pipeline_predicts_as_before(factory):
    expected = json.loads((SAVED / f"{factory}.json").read_text())
    nlp = spacy.load(SAVED / factory)
    found = []
    for doc in nlp.pipe(expected["texts"]):
        group = doc.spans["nested"]
        found.append([[sp.start, sp.end, sp.label_, float(s)] for sp, s in zip(group, group.attrs["scores"])])
    assert sum(len(spans) for spans in found) > 0
    assert found == expected["spans"]
