"""``combine-pipelines``: any trained detector pipelines, the same detector several times too, under one ensemble."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.ensemble.build import combine_pipelines, parse_members
from tests.detectors.nested_fixture import SENTENCES, build_nlp, make_examples, train

TEXTS = [text for text, _ in SENTENCES]


def _spans(doc, key):
    group = doc.spans[key]
    return {(s.start, s.end, s.label_): round(float(x), 5) for s, x in zip(group, group.attrs["scores"])}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Two locate_label pipelines trained with different seeds (so they predict differently) and a proposer_regressor."""
    root = tmp_path_factory.mktemp("seeds")
    members = (("ll0", "locate_label_ner", 0), ("ll1", "locate_label_ner", 1), ("pr", "proposer_regressor_ner", 0))
    for name, factory, seed in members:
        nlp = build_nlp(factory)
        train(nlp, make_examples(nlp), 12, seed=seed, learn_rate=0.01)
        nlp.to_disk(root / name)
    return root


@pytest.mark.slow
def test_the_same_detector_twice_each_predicting_what_its_own_pipeline_predicts(seeds, tmp_path):
    output = tmp_path / "combined"
    args = ["combine-pipelines", str(output), f"a={seeds / 'll0'}", f"b={seeds / 'll1'}", f"c={seeds / 'pr'}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    nlp = spacy.load(output)
    # the second locate_label is sourced under its key: the name is taken by the first
    assert nlp.pipe_names == ["tok2vec", "locate_label_ner", "b", "proposer_regressor_ner", "nested_ensemble"]
    assert nlp.get_pipe("nested_ensemble").members == ["a", "b", "c"]
    docs = list(nlp.pipe(TEXTS))
    alone = {
        key: [_spans(d, "nested") for d in spacy.load(seeds / name).pipe(TEXTS)]
        for key, name in zip("abc", ("ll0", "ll1", "pr"))
    }
    assert alone["a"] != alone["b"]  # the seeds differ, so a member listening to the wrong encoder would show
    for key, spans in alone.items():
        assert sum(map(len, spans)) > 0, key
        assert [_spans(d, key) for d in docs] == spans, key
    assert sum(len(d.spans["nested"]) for d in docs) > 0


def test_bad_members_are_refused_by_name(seeds, tmp_path):
    with pytest.raises(ValueError, match="at least two members with different keys"):
        combine_pipelines([("a", seeds / "ll0"), ("a", seeds / "ll1")])
    with pytest.raises(ValueError, match="the ensemble writes 'nested'"):
        combine_pipelines([("nested", seeds / "ll0"), ("b", seeds / "ll1")])
    with pytest.raises(ValueError, match="no config.cfg.*nowhere"):
        combine_pipelines([("a", seeds / "ll0"), ("b", tmp_path / "nowhere")])
    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    with pytest.raises(ValueError, match="exactly one detector.*none"):
        combine_pipelines([("a", seeds / "ll0"), ("b", blank)])
    with pytest.raises(ValueError, match="KEY=MODEL"):
        parse_members(["a=x", "just-a-path"])
    result = CliRunner().invoke(app, ["combine-pipelines", str(tmp_path / "out"), f"a={seeds / 'll0'}", f"b={blank}"])
    assert result.exit_code != 0 and "exactly one detector" in result.output
    assert not (tmp_path / "out").exists()  # nothing written


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHARED = {
    "nested_ll": CONFIGS / "genia_locate_label_cpu.cfg",
    "nested_bo": CONFIGS / "genia_boundary_offset_cpu.cfg",
    "nested_pr": CONFIGS / "genia_proposer_regressor_cpu.cfg",
}


def test_shared_encoder_config_trains_three_heads_over_one_tok2vec(tmp_path):
    """The written config: one tok2vec that all three detectors listen to, each learning the corpus's gold
    (copied under its key), each scored on dev under its key, the ensemble under the corpus's."""
    from spacy.schemas import ConfigSchemaTraining
    from spacy.training.initialize import init_nlp
    from spacy.util import registry, resolve_dot_names

    from tests.test_configs import _tiny_config
    from tests.tiny_bert import make_nested_docs, train_step

    output = tmp_path / "shared.cfg"
    result = CliRunner().invoke(app, ["shared-encoder-config", str(output), *(f"{k}={p}" for k, p in SHARED.items())])
    assert result.exit_code == 0, result.output
    corpus = tmp_path / "tiny.spacy"
    DocBin(docs=make_nested_docs(spacy.blank("en").vocab), store_user_data=True).to_disk(corpus)
    config, _ = _tiny_config(output, "", corpus)
    spacy.util.fix_random_seed(0)
    nlp = init_nlp(config, use_gpu=-1)
    detectors = ["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"]
    assert nlp.pipe_names == ["tok2vec", *detectors, "nested_ensemble"]
    assert sorted(nlp.get_pipe("tok2vec").listening_components) == sorted(detectors)
    assert [nlp.get_pipe(d).cfg["spans_key"] for d in detectors] == list(SHARED)
    filled = nlp.config.interpolate()
    T = registry.resolve(filled["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(filled, [T["train_corpus"], T["dev_corpus"]])
    examples = list(train_corpus(nlp))
    gold = [sorted((s.start, s.end, s.label_) for s in eg.reference.spans["nested"]) for eg in examples]
    assert sum(map(len, gold)) > 0
    for key in SHARED:
        assert [sorted((s.start, s.end, s.label_) for s in eg.reference.spans[key]) for eg in examples] == gold
    tok2vec_before = nlp.get_pipe("tok2vec").model.get_ref("embed").to_bytes()
    for _ in range(2):
        losses = train_step(nlp, examples, T["optimizer"], drop=T["dropout"])
    assert all(losses[d] > 0 for d in detectors), losses
    assert nlp.get_pipe("tok2vec").model.get_ref("embed").to_bytes() != tok2vec_before
    dev = list(dev_corpus(nlp))
    assert all(len(eg.reference.spans[key]) == len(eg.reference.spans["nested"]) for eg in dev for key in SHARED)
    scores = nlp.evaluate(dev)
    for key in ("nested", *SHARED):  # each member and the ensemble scored under its own key
        assert 0.0 <= scores[f"spans_{key}_f"] <= 1.0, (key, sorted(scores))
    predicted = list(nlp.pipe(eg.reference.text for eg in dev))
    assert all(key in doc.spans for doc in predicted for key in ("nested", *SHARED))  # every group written
    assert T["score_weights"]["spans_nested_f"] == 1.0 and T["score_weights"]["spans_nested_ll_f"] == 0.0


def test_shared_encoder_config_refuses_members_of_different_encoders():
    from spacy_nested.ensemble.build import shared_encoder_config

    with pytest.raises(ValueError, match=r"differs .* in .*\[components.tok2vec\].*\[components.transformer\]"):
        shared_encoder_config([("a", SHARED["nested_ll"]), ("b", CONFIGS / "genia_boundary_offset_minilm.cfg")])
    with pytest.raises(ValueError, match="the corpus's key"):
        shared_encoder_config([("nested", SHARED["nested_ll"]), ("b", SHARED["nested_bo"])])
    with pytest.raises(ValueError, match="exactly one detector.*none"):
        shared_encoder_config([("a", SHARED["nested_ll"]), ("b", CONFIGS / "genia_spancat_cpu.cfg")])
