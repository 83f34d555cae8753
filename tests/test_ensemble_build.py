"""``combine-pipelines``: any trained detector pipelines, the same detector several times too, under one ensemble."""
import pytest
import spacy
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.ensemble_build import combine_pipelines, parse_members

from .pipeline.nested_fixture import SENTENCES, build_nlp, make_examples, train

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
