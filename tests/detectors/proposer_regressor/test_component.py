"""proposer_regressor_ner specifics: set-prediction loss, unmatched gold, switches, reach.

Overfitting, save/load, batch independence and windows are common tests (test_common.py)."""
import numpy
import pytest
import spacy
import torch

from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_examples, model_config, train
from tests.detectors.test_common import _assert_same, _spans, train_until_predicted

NAME = "proposer_regressor_ner"


def _initialized(**loss):
    nlp = build_nlp(NAME, config={"loss": loss} if loss else None)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp, nlp.get_pipe(NAME)


def _loss(pipe, n, gold, seed=0):
    torch.manual_seed(seed)
    C, T = len(_table(pipe)), len(pipe.labels) + 1
    outputs = [torch.randn(n, C, requires_grad=True), torch.randn(n, T, requires_grad=True)]
    _, targets = pipe.train_extras([(0, 0, n)], [numpy.asarray(gold, dtype="int64").reshape(-1, 3)])
    return pipe.compute_loss(outputs, (), targets), outputs


def _table(pipe):
    from spacy_nested.detectors.proposer_regressor.codec import pointer_table

    return pointer_table(pipe.max_width)


def test_sum_reduction_is_the_mean_times_the_proposals():
    _, summed = _initialized(reduction="sum")
    _, mean = _initialized(reduction="mean")
    gold = [(0, 2, 1), (1, 2, 2)]
    loss_sum, _ = _loss(summed, 5, gold)
    loss_mean, _ = _loss(mean, 5, gold)
    assert loss_sum.item() == pytest.approx(5 * loss_mean.item(), rel=1e-5)


def test_more_gold_than_proposals_is_counted_not_silently_dropped(caplog):
    _, pipe = _initialized()
    gold = [(0, 1, 1), (1, 2, 1), (0, 2, 1), (0, 2, 2)]  # 4 entities, 2 tokens = 2 proposals
    before = pipe.n_unmatched_gold
    with caplog.at_level("WARNING", logger="spacy_nested"):
        loss, outputs = _loss(pipe, 2, gold)
    assert pipe.n_unmatched_gold - before == 2
    assert "2 gold entities had no proposal" in caplog.text
    loss.backward()
    assert outputs[0].grad.abs().sum() > 0  # the matched entities still train the pointer


def test_every_proposal_pays_none_without_gold():
    _, pipe = _initialized(reduction="mean")
    loss, (pointer, types) = _loss(pipe, 4, [])
    expected = -torch.log_softmax(types, dim=-1)[:, -1].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_leftover_proposals_take_their_argmin_target_only_one_to_many():
    """Every proposal is sure of the one gold entity: greedy leftovers learn it too (cheap),
    the code's rule sends them to None (expensive)."""
    from spacy_nested.detectors.proposer_regressor.codec import candidate_index

    gold = numpy.asarray([[1, 3, 1]])
    costs = {}
    for one_to_many in (True, False):
        _, pipe = _initialized(one_to_many=one_to_many, reduction="mean")
        n, C = 6, len(_table(pipe))
        pointer, types = torch.zeros(n, C), torch.zeros(n, len(pipe.labels) + 1)
        reach = candidate_index(gold[:, :2], n, pipe.max_width)[:, 0]
        pointer[torch.arange(n), torch.as_tensor(reach)] = 30.0
        types[:, 0] = 30.0
        _, targets = pipe.train_extras([(0, 0, n)], [gold])
        costs[one_to_many] = pipe.compute_loss([pointer, types], (), targets).item()
    assert costs[True] < 1e-3
    assert costs[False] > 20 * 5 / 6  # five of six proposals pay -log p(None) ≈ 30


def test_unknown_loss_reduction_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown loss reduction 'max'"):
        build_nlp(NAME, config={"loss": {"reduction": "max"}})


@pytest.mark.parametrize(
    "switch",
    [
        {"backward": False},
        {"spatial": False},
        {"gate": "ffn"},
        {"category_embedding": False},
        {"location_iteration": False},
        {"logits_iteration": False},
        {"kernels": []},
        {"n_layers": 0},
        {"pool": "max", "query": "fused"},
    ],
)
def test_ablation_switches_train_and_round_trip(switch, tmp_path):
    spacy.blank("en")  # a Language instance loads the entry-point factories model_config reads
    nlp = build_nlp(NAME, config={"model": model_config(NAME, **switch)})
    texts, before = train_until_predicted(nlp)
    assert sum(len(_spans(doc)[0]) for doc in before) > 0  # a round trip of empty lists proves nothing
    nlp.to_disk(tmp_path / "m")
    _assert_same(before, spacy.load(tmp_path / "m").pipe(texts))


@pytest.mark.slow
def test_predicted_spans_stay_within_the_pointer_reach():
    nlp = build_nlp(NAME, config={"model": model_config(NAME, max_width=3)})
    train(nlp, make_examples(nlp), 20, learn_rate=0.01)
    for doc in nlp.pipe(text for text, _ in SENTENCES):
        assert all(1 <= e - s <= 3 for s, e, _ in _spans(doc)[0])
