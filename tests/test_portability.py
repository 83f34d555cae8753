"""Trained pipelines travel: GPU-saved weights load on CPU.

Identical predictions across ``nlp.pipe`` batch sizes and ``n_process`` are
tested in ``tests/pipeline/test_common.py``.
"""
from io import BytesIO
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy
import pytest
import spacy
import srsly
import torch
from spacy.language import Language
from spacy.tokens import Doc

from .pipeline.nested_fixture import SENTENCES, build_nlp, make_examples, train

DETECTORS = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
# updates after which each detector predicts some spans on the fixture (measured 2026-11-28)
N_UPDATES = {"locate_label_ner": 20, "boundary_offset_ner": 80, "proposer_regressor_ner": 20}
TEXTS = [text for text, _ in SENTENCES]
KEY = "nested"
Prediction = Tuple[List[Tuple[int, int, str]], numpy.ndarray]


def trained_pipeline(factory: str) -> Language:
    """The fixture pipeline after a few updates, so that it predicts spans."""
    nlp = build_nlp(factory)
    train(nlp, make_examples(nlp), N_UPDATES[factory])
    return nlp


def predictions(docs: Sequence[Doc]) -> List[Prediction]:
    """Spans and their scores per doc."""
    out = []
    for doc in docs:
        group = doc.spans[KEY]
        out.append(([(s.start, s.end, s.label_) for s in group], numpy.asarray(group.attrs["scores"])))
    return out


def assert_same_predictions(expected: List[Prediction], actual: List[Prediction]) -> None:
    assert len(expected) == len(actual)
    for (spans_a, scores_a), (spans_b, scores_b) in zip(expected, actual):
        assert spans_a == spans_b
        numpy.testing.assert_allclose(scores_a, scores_b, atol=1e-6)


# --- GPU-trained weights on a CPU machine ------------------------------------


def torch_states(model_bytes: bytes) -> List[bytes]:
    """The ``torch.save`` payloads of the torch heads in a thinc model's bytes."""
    shims = [shim for node in srsly.msgpack_loads(model_bytes)["shims"] for shim in node]
    return [srsly.msgpack_loads(srsly.msgpack_loads(shim)["state"])["state"] for shim in shims]


def component_model_bytes(pipeline_bytes: bytes, name: str) -> bytes:
    """A component's thinc model bytes inside ``nlp.to_bytes()``."""
    return srsly.msgpack_loads(srsly.msgpack_loads(pipeline_bytes)[name])["model"]


def assert_tagged_cuda(model_bytes: bytes) -> None:
    """Plain ``torch.load`` fails on a CPU machine: the weights claim to live on a GPU."""
    states = torch_states(model_bytes)
    assert states
    for state in states:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(BytesIO(state), weights_only=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates GPU-saved weights on a CPU-only machine")
@pytest.mark.parametrize("factory", DETECTORS)
def test_gpu_saved_weights_load_on_cpu_and_predict_the_same(factory: str, tmp_path: Path, monkeypatch) -> None:
    """Storages tagged "cuda:0" (as ``torch.save`` writes them on a GPU) are mapped to the CPU.

    thinc's ``PyTorchShim.from_bytes`` hands ``get_torch_default_device()`` to
    ``bridge.deserialize_head``, which loads with ``map_location`` set to it.
    """
    nlp = trained_pipeline(factory)
    before = predictions(nlp.pipe(TEXTS))
    assert any(spans for spans, _ in before)
    path = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        nlp.to_disk(path)
        data = nlp.to_bytes()
    assert_tagged_cuda((path / factory / "model").read_bytes())
    assert_tagged_cuda(component_model_bytes(data, factory))
    loaded = [
        spacy.load(path),
        spacy.util.load_model_from_config(nlp.config).from_disk(path),
        spacy.util.load_model_from_config(nlp.config).from_bytes(data),
    ]
    for other in loaded:
        assert_same_predictions(before, predictions(other.pipe(TEXTS)))
