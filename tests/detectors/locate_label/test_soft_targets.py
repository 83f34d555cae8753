"""Soft targets (``sampling.soft_targets``): a target span's score, as a distilled corpus gives the
teacher's spans, becomes a soft label; plain gold (no scores, or 1.0) trains as before."""
import numpy
import pytest
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_nested.detectors.locate_label.codec import encode
from spacy_nested.detectors.locate_label.loss import categorical_loss
from tests.detectors.locate_label.test_codec import sampling
from tests.detectors.nested_fixture import build_nlp, make_examples, train

TEACHER_SPAN = (4, 5, "protein")  # "levels" in "TNF alpha and IL-6 levels rose in monocytes"
SENTENCE = 6


def test_pair_scores_are_the_paired_spans_scores_only_with_soft_targets():
    gold = numpy.array([[1, 4, 1], [6, 7, 2]])
    scores = numpy.array([1.0, 0.3], dtype="float32")
    soft = encode(gold, 8, [1, 2, 3], sampling(neg_ratio=0, soft_targets=True), scores=scores)
    hard = encode(gold, 8, [1, 2, 3], sampling(neg_ratio=0, soft_targets=False), scores=scores)
    at = {tuple(s): i for i, s in enumerate(soft.spans.tolist())}
    assert soft.pair_scores[at[(6, 7)]] == pytest.approx(0.3)
    assert soft.pair_scores[at[(1, 4)]] == pytest.approx(1.0)
    assert soft.pair_scores[at[(5, 7)]] == pytest.approx(0.3)  # a negative seed keeps its nearest pair's score
    assert (hard.pair_scores == 1.0).all()
    assert (soft.positive == hard.positive).all() and (soft.labels == hard.labels).all()


def test_segment_without_gold_has_score_one():
    t = encode(numpy.zeros((0, 3)), 4, [1, 2], sampling(neg_ratio=0, soft_targets=True), scores=numpy.zeros(0))
    assert len(t) > 0 and (t.pair_scores == 1.0).all()


def test_categorical_confidence_mixes_the_label_and_none():
    logits = torch.tensor([[0.5, 2.0, -1.0], [1.0, 0.0, 0.3]])
    targets = torch.tensor([1, 2])
    logp = torch.log_softmax(logits, -1)
    hard = categorical_loss(logits, targets)
    assert categorical_loss(logits, targets, confidence=torch.ones(2)).item() == pytest.approx(hard.item())
    none = -logp[:, 0].mean().item()
    assert categorical_loss(logits, targets, confidence=torch.zeros(2)).item() == pytest.approx(none, rel=1e-5)
    c = torch.tensor([0.25, 0.5])
    mixed = ((0.25 * -logp[0, 1] + 0.75 * -logp[0, 0]) + (0.5 * -logp[1, 2] + 0.5 * -logp[1, 0])).item() / 2
    assert categorical_loss(logits, targets, confidence=c).item() == pytest.approx(mixed, rel=1e-5)


def _reference(nlp, words, spans, scores=None):
    doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    doc.spans["nested"] = [Span(doc, s, e, label=label) for s, e, label in spans]
    if scores is not None:
        doc.spans["nested"].attrs["scores"] = scores
    return doc


def test_scored_gold_reads_the_scores_through_the_alignment():
    nlp = build_nlp("locate_label_ner")
    pipe = nlp.get_pipe("locate_label_ner")
    for label in ("DNA", "protein"):
        pipe.add_label(label)
    reference = _reference(nlp, ["IL-2", "gene", "in", "cells"], [(0, 1, "protein"), (0, 2, "DNA")], [0.4, 1.0])
    # the predicted doc splits "IL-2" in three tokens: the spans move, their scores follow them
    predicted = Doc(nlp.vocab, words=["IL", "-", "2", "gene", "in", "cells"], spaces=[False, False, True, True, True, False])
    gold, scores = pipe.scored_gold_for_segments([Example(predicted, reference)], [(0, 0, 6)])
    found = {(int(s), int(e), pipe.labels[int(k) - 1]): float(sc) for (s, e, k), sc in zip(gold[0], scores[0])}
    assert found == {(0, 3, "protein"): pytest.approx(0.4), (0, 4, "DNA"): pytest.approx(1.0)}
    plain = _reference(nlp, ["IL-2", "gene", "in", "cells"], [(0, 1, "protein")])
    _, scores = pipe.scored_gold_for_segments([Example(predicted, plain)], [(0, 0, 6)])
    assert scores[0].tolist() == [1.0]


def _teacher_examples(nlp, score: float):
    """The fixture, plus one span a teacher scored ``score`` on sentence SENTENCE."""
    examples = make_examples(nlp)
    reference = examples[SENTENCE].reference
    group = reference.spans["nested"]
    start, end, label = TEACHER_SPAN
    reference.spans["nested"] = list(group) + [Span(reference, start, end, label=label)]
    reference.spans["nested"].attrs["scores"] = [1.0] * len(group) + [score]
    return examples


def predicted_after_training(name: str, config: dict, score: float, steps: int = 60):
    """The fixture's sentence SENTENCE as predicted after training ``name`` with ``config`` on the
    fixture plus the teacher span scored ``score``: {(start, end, label): score}."""
    nlp = build_nlp(name, config)
    examples = _teacher_examples(nlp, score)
    train(nlp, examples, steps, learn_rate=0.005)
    doc = nlp(examples[SENTENCE].reference.text)
    group = doc.spans["nested"]
    return {(s.start, s.end, s.label_): sc for s, sc in zip(group, group.attrs["scores"])}


def _predicted(soft_targets: bool, score: float):
    return predicted_after_training("locate_label_ner", {"sampling": {"soft_targets": soft_targets}, "threshold": 0.0}, score)


@pytest.mark.slow
def test_a_low_scored_teacher_span_is_learnt_as_unlikely_only_with_soft_targets():
    hard = _predicted(False, 0.05)
    soft = _predicted(True, 0.05)
    assert hard.get(TEACHER_SPAN, 0.0) > 0.5  # hard targets: a positive like the gold
    assert soft.get(TEACHER_SPAN, 0.0) < 0.5  # soft: 5% a protein
    for span in [(0, 2, "protein"), (3, 4, "protein"), (7, 8, "cell_type")]:  # the gold is learnt either way
        assert hard.get(span, 0.0) > 0.5 and soft.get(span, 0.0) > 0.5
