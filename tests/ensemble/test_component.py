"""``nested_ensemble``: the merge rules, its errors, saving, thresholds, both member setups and tune-ensemble.

Merging is checked against a plain-Python reference (dicts, no numpy) on hand-made docs and on
the spans of small trained detectors; the detectors train for a dozen updates, enough for them
to predict spans that partly disagree.
"""
import shutil
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy
import pytest
import spacy
from spacy.cli.find_threshold import find_threshold
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.corpora.augmenters import make_span_copier
from spacy_nested.detectors.base import NestedSpanDetector
from spacy_nested.ensemble import component as ensemble  # noqa: F401  (registers the factory)
from spacy_nested.ensemble.merge import merge
from spacy_nested.ensemble.tune import MEMBER_THRESHOLDS, tune_ensemble, weight_grid
from tests.detectors.nested_fixture import SENTENCES, SMALL_TOK2VEC, build_nlp, make_doc, make_examples, model_config, train

MEMBERS = {"locate_label_ner": "nested_ll", "boundary_offset_ner": "nested_bo", "proposer_regressor_ner": "nested_pr"}
TEXTS = [text for text, _ in SENTENCES]
N_SHARED = 20  # updates of the shared-encoder pipeline: the members predict spans, not all the same ones
Triple = Tuple[int, int, str]


# --- helpers -------------------------------------------------------------------------------
def put(doc: Doc, key: str, spans: Sequence[Tuple[int, int, str, float]]) -> None:
    group = SpanGroup(doc, name=key, spans=[Span(doc, s, e, label=label) for s, e, label, _ in spans])
    group.attrs["scores"] = [score for *_, score in spans]
    doc.spans[key] = group


def spans_of(doc: Doc, key: str = "nested") -> Dict[Triple, float]:
    group = doc.spans[key]
    return {(s.start, s.end, s.label_): float(x) for s, x in zip(group, group.attrs["scores"])}


def reference_merge(
    members: List[Dict[Triple, float]], weights: Sequence[float], rule: str, threshold: float, min_votes: int
) -> Dict[Triple, float]:
    """The rules as the docs state them, in plain Python."""
    out = {}
    for triple in set().union(*members):
        score = sum(w * m.get(triple, 0.0) for w, m in zip(weights, members)) / sum(weights)
        votes = sum(triple in m for m in members)
        if (rule == "average" and score >= threshold) or (rule == "vote" and votes >= min_votes):
            out[triple] = score
    return out


def blank_with(config: dict) -> Tuple[Language, "ensemble.NestedEnsemble"]:
    nlp = spacy.blank("en")
    return nlp, nlp.add_pipe("nested_ensemble", config=config)


def hand_doc(nlp: Language) -> Doc:
    doc = nlp.make_doc("IL-2 gene expression requires NF-kappa B activation")
    put(doc, "a", [(3, 5, "protein", 0.8), (0, 2, "DNA", 0.9), (0, 1, "protein", 0.7)])  # unsorted on purpose
    put(doc, "b", [(0, 2, "DNA", 0.6), (0, 2, "protein", 0.95), (0, 1, "protein", 0.5)])
    put(doc, "c", [(0, 2, "DNA", 0.3), (5, 6, "protein", 0.4), (0, 1, "protein", 0.6)])
    return doc


class FixedSpans:
    """A pipe that writes one scored span per label at the doc start to its spans_key (no training)."""

    def __init__(self, name: str, spans_key: str, labels: List[str]) -> None:
        self.name = name
        self.cfg = {"spans_key": spans_key}
        self._labels = list(labels)

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self._labels)

    def __call__(self, doc: Doc) -> Doc:
        put(doc, self.cfg["spans_key"], [(0, 1, label, 0.9) for label in self._labels])
        return doc


@Language.factory("test_ensemble_fixed_spans", default_config={"spans_key": "a", "labels": ["X"]})
def make_fixed_spans(nlp: Language, name: str, spans_key: str, labels: List[str]) -> FixedSpans:
    return FixedSpans(name, spans_key, labels)


def fixed_pipeline(labels: Dict[str, List[str]], ensemble_config: dict) -> Language:
    nlp = spacy.blank("en")
    for key, names in labels.items():
        nlp.add_pipe("test_ensemble_fixed_spans", name=f"writes_{key}", config={"spans_key": key, "labels": names})
    nlp.add_pipe("nested_ensemble", config=ensemble_config)
    return nlp


# --- the merge rules -------------------------------------------------------------------------
def test_average_counts_a_span_missing_from_a_member_as_zero():
    nlp, ens = blank_with({"members": ["a", "b", "c"], "threshold": 0.3})
    doc = ens(hand_doc(nlp))
    assert spans_of(doc) == pytest.approx({
        (0, 1, "protein"): (0.7 + 0.5 + 0.6) / 3,
        (0, 2, "DNA"): (0.9 + 0.6 + 0.3) / 3,
        (0, 2, "protein"): 0.95 / 3,  # only b found it: averaged with two zeros, and still kept
    })
    # (3, 5) scores 0.8 / 3 = 0.27 < 0.3 although member a was sure of it; (5, 6) 0.4 / 3
    assert [(s.start, s.end, s.label_) for s in doc.spans["nested"]] == [(0, 1, "protein"), (0, 2, "DNA"), (0, 2, "protein")]


def test_weights_enter_the_average():
    nlp, ens = blank_with({"members": ["a", "b", "c"], "weights": [2.0, 1.0, 1.0], "threshold": 0.0})
    got = spans_of(ens(hand_doc(nlp)))
    assert got[(0, 2, "DNA")] == pytest.approx((2 * 0.9 + 0.6 + 0.3) / 4)
    assert got[(3, 5, "protein")] == pytest.approx(2 * 0.8 / 4)
    assert got[(5, 6, "protein")] == pytest.approx(0.4 / 4)
    assert len(got) == 5  # threshold 0 keeps every candidate


def test_vote_keeps_exactly_the_spans_at_least_min_votes_members_share():
    nlp, ens = blank_with({"members": ["a", "b", "c"], "rule": "vote", "min_votes": 2})
    doc = ens(hand_doc(nlp))
    # (0, 1, protein) and (0, 2, DNA): all three; (0, 2, protein): b alone (a and c have DNA there);
    # (3, 5) a alone, (5, 6) c alone
    assert spans_of(doc) == pytest.approx({(0, 1, "protein"): 1.8 / 3, (0, 2, "DNA"): 1.8 / 3})
    doc = hand_doc(nlp)
    put(doc, "c", [(3, 5, "protein", 0.2)])  # now a and c share (3, 5); b and c share nothing
    assert set(spans_of(ens(doc))) == {(0, 2, "DNA"), (0, 1, "protein"), (3, 5, "protein")}
    ens.cfg["min_votes"] = 3
    assert set(spans_of(ens(hand_doc(nlp)))) == {(0, 1, "protein"), (0, 2, "DNA")}
    doc = hand_doc(nlp)
    put(doc, "c", [(3, 5, "protein", 0.2), (0, 1, "protein", 0.6)])
    assert set(spans_of(ens(doc))) == {(0, 1, "protein")}  # the one span all three share


def test_merge_matches_the_reference_on_random_members():
    rng = numpy.random.default_rng(0)
    for trial in range(200):
        members = []
        for _ in range(3):
            n = int(rng.integers(0, 12))
            spans = {(int(s), int(s + w), str(lab)): float(rng.choice([rng.random(), 0.5, 0.25, 1.0]))
                     for s, w, lab in zip(rng.integers(0, 6, n), rng.integers(1, 4, n), rng.integers(0, 3, n))}
            members.append(spans)
        weights = [float(w) for w in rng.choice([0.0, 0.5, 1.0, 2.0], 3)]
        if sum(weights) == 0:
            weights[0] = 1.0
        rule = ["average", "vote"][trial % 2]
        threshold = float(rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, rng.random()]))
        min_votes = int(rng.integers(1, 4))
        arrays = [
            (numpy.asarray([(s, e, int(lab)) for s, e, lab in m], dtype="int64").reshape(-1, 3), numpy.asarray(list(m.values())))
            for m in members
        ]
        triples, scores = merge(arrays, weights, rule=rule, threshold=threshold, min_votes=min_votes)
        got = {(s, e, str(lab)): x for (s, e, lab), x in zip(triples.tolist(), scores.tolist())}
        assert got == pytest.approx(reference_merge(members, weights, rule, threshold, min_votes))
        assert triples.tolist() == sorted(triples.tolist())  # by start, end, label
        assert ((scores >= 0) & (scores <= 1)).all()


# --- configuration errors ----------------------------------------------------------------
@pytest.mark.parametrize(
    "config,message",
    [
        ({"members": ["a"]}, "at least 2 members"),
        ({"members": []}, "at least 2 members"),
        ({"members": ["a", "a", "b"]}, "listed more than once"),
        ({"members": ["a", "b", "nested"]}, "spans_key 'nested' is also a member"),
        ({"members": ["a", "b", "c"], "weights": [1.0, 1.0]}, "one weight per member: 3 members"),
        ({"members": ["a", "b", "c"], "weights": [1.0, -1.0, 1.0]}, "finite and >= 0"),
        ({"members": ["a", "b", "c"], "weights": [0.0, 0.0, 0.0]}, "all zero"),
        ({"members": ["a", "b"], "rule": "max"}, "rule must be one of ['average', 'vote']"),
        ({"members": ["a", "b"], "threshold": 1.5}, "threshold must be within [0, 1]"),
        ({"members": ["a", "b"], "rule": "vote", "min_votes": 3}, "min_votes must be an integer from 1 to the number of members"),
    ],
)
def test_bad_configuration_is_refused_when_the_pipe_is_built(config, message):
    with pytest.raises(ValueError) as err:
        blank_with(config)
    assert message in str(err.value)


def test_initialize_checks_the_settings_again():
    nlp = fixed_pipeline({"a": ["X"], "b": ["X"]}, {"members": ["a", "b"]})
    nlp.initialize()
    nlp.get_pipe("nested_ensemble").cfg["weights"] = [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="one weight per member: 2 members"):
        nlp.initialize()


def test_a_member_no_earlier_pipe_writes_is_refused_at_initialize():
    nlp = fixed_pipeline({"a": ["X"], "b": ["X"]}, {"members": ["a", "b", "c"]})
    with pytest.raises(ValueError) as err:
        nlp.initialize()
    assert "member 'c': no pipe before nested_ensemble writes doc.spans['c']" in str(err.value)
    assert "the members must be the spans_key of detectors placed before nested_ensemble" in str(err.value)
    # a writer placed after the ensemble does not count
    nlp = spacy.blank("en")
    nlp.add_pipe("test_ensemble_fixed_spans", name="writes_a", config={"spans_key": "a"})
    nlp.add_pipe("nested_ensemble", config={"members": ["a", "b"]})
    nlp.add_pipe("test_ensemble_fixed_spans", name="writes_b", config={"spans_key": "b"})
    with pytest.raises(ValueError, match="member 'b': no pipe before nested_ensemble"):
        nlp.initialize()


def test_a_doc_without_a_member_key_is_refused_at_call_time():
    nlp, ens = blank_with({"members": ["a", "b", "c"]})
    doc = hand_doc(nlp)
    del doc.spans["c"]
    with pytest.raises(ValueError) as err:
        ens(doc)
    assert (
        "member 'c': doc.spans has no such key; the members must be the spans_key of detectors placed before "
        "nested_ensemble" in str(err.value)
    )
    doc = hand_doc(nlp)
    doc.spans["b"].attrs["scores"] = [0.5]  # not one per span
    with pytest.raises(ValueError, match=r"member 'b': doc.spans\['b'\].attrs\['scores'\] must hold one score per span"):
        ens(doc)


def test_members_with_different_labels_are_refused_naming_the_extra_labels():
    nlp = fixed_pipeline({"a": ["X", "Y"], "b": ["X"], "c": ["X", "Z"]}, {"members": ["a", "b", "c"]})
    with pytest.raises(ValueError) as err:
        nlp.initialize()
    text = str(err.value)
    assert "member 'a' (pipe 'writes_a') has extra labels ['Y']" in text
    assert "member 'c' (pipe 'writes_c') has extra labels ['Z']" in text
    assert "member 'b'" not in text
    nlp = fixed_pipeline({"a": ["X", "Y"], "b": ["Y", "X"]}, {"members": ["a", "b"]})
    nlp.initialize()
    assert nlp.get_pipe("nested_ensemble").labels == ("X", "Y")


def test_detectors_with_different_labels_are_refused():
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    nlp.add_pipe("tok2vec", config=SMALL_TOK2VEC)
    for name, key in (("ll_all", "nested_a"), ("ll_protein", "nested_b")):
        nlp.add_pipe("locate_label_ner", name=name, config={"model": model_config("locate_label_ner"), "spans_key": key})
    nlp.add_pipe("nested_ensemble", config={"members": ["nested_a", "nested_b"]})
    examples = []
    for text, spans in SENTENCES:
        reference = make_doc(nlp.vocab, text, spans, key="nested_a")
        reference.spans["nested_b"] = [s for s in reference.spans["nested_a"] if s.label_ == "protein"]
        examples.append(Example(nlp.make_doc(text), reference))
    with pytest.raises(ValueError) as err:
        nlp.initialize(lambda: examples)
    assert "member 'nested_a' (pipe 'll_all') has extra labels ['DNA', 'RNA', 'cell_line', 'cell_type']" in str(err.value)


# --- saving, thresholds ----------------------------------------------------------------------
def test_save_and_load_keep_the_settings_and_the_output(tmp_path):
    config = {"members": ["a", "b", "c"], "weights": [2.0, 1.0, 0.5], "threshold": 0.35, "spans_key": "merged"}
    nlp = fixed_pipeline({"a": ["X", "Y"], "b": ["X", "Y"], "c": ["X", "Y"]}, config)
    nlp.initialize()
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    cfg = loaded.get_pipe("nested_ensemble").cfg
    assert {k: cfg[k] for k in ("members", "weights", "threshold", "spans_key", "rule")} == {**config, "rule": "average"}
    assert cfg["labels"] == ["X", "Y"]  # from the saved cfg: initialize was not run again
    assert spans_of(loaded("a b c"), "merged") == spans_of(nlp("a b c"), "merged")
    # and through bytes, into a pipeline built from the same config
    other = spacy.util.load_model_from_config(nlp.config, auto_fill=True)
    other.from_bytes(nlp.to_bytes())
    assert other.get_pipe("nested_ensemble").cfg == nlp.get_pipe("nested_ensemble").cfg


def test_a_changed_cfg_threshold_changes_the_output_at_call_time():
    nlp, ens = blank_with({"members": ["a", "b", "c"]})
    assert set(spans_of(ens(hand_doc(nlp)))) == {(0, 1, "protein"), (0, 2, "DNA")}
    ens.cfg["threshold"] = 0.25  # what spacy find-threshold does to the pipe
    assert set(spans_of(ens(hand_doc(nlp)))) == {(0, 1, "protein"), (0, 2, "DNA"), (0, 2, "protein"), (3, 5, "protein")}
    ens.cfg["threshold"] = 0.3
    assert set(spans_of(ens(hand_doc(nlp)))) == {(0, 1, "protein"), (0, 2, "DNA"), (0, 2, "protein")}


# --- setup (a): three detectors sharing one tok2vec -----------------------------------------
def shared_pipeline() -> Tuple[Language, List[Example]]:
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    nlp.add_pipe("tok2vec", config=SMALL_TOK2VEC)
    for factory, key in MEMBERS.items():
        nlp.add_pipe(factory, config={"model": model_config(factory), "spans_key": key})
    nlp.add_pipe("nested_ensemble", config={"members": list(MEMBERS.values())})
    copy_gold = make_span_copier("nested", list(MEMBERS.values()))  # as [corpora.train.augmenter] would
    examples = []
    for text, spans in SENTENCES:
        reference = make_doc(nlp.vocab, text, spans)  # gold under "nested" (scored) and each member key (trained)
        examples.extend(copy_gold(nlp, Example(nlp.make_doc(text), reference)))
    return nlp, examples


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    nlp, examples = shared_pipeline()
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for _ in range(N_SHARED):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    path = tmp_path_factory.mktemp("shared")
    nlp.to_disk(path / "model")
    dev = [eg.reference.copy() for eg in examples]
    for doc in dev:  # a dev corpus holds the gold under "nested" only
        for key in MEMBERS.values():
            del doc.spans[key]
    DocBin(docs=dev).to_disk(path / "dev.spacy")
    return nlp, examples, path


def _check_merged(docs: List[Doc], members: Sequence[str], threshold: float = 0.5) -> int:
    """Each doc's ensemble output is the reference merge of its member spans; returns the spans merged."""
    n = 0
    for doc in docs:
        found = [spans_of(doc, key) for key in members]
        expected = reference_merge(found, [1.0] * len(found), "average", threshold, 2)
        got = spans_of(doc)
        assert got == pytest.approx(expected)
        assert all(0.0 <= x <= 1.0 for x in got.values())
        n += len(got)
    return n


@pytest.mark.slow
def test_shared_encoder_members_are_merged_end_to_end(shared):
    nlp, examples, _ = shared
    assert nlp.get_pipe("nested_ensemble").labels == tuple(sorted({lab for _, s in SENTENCES for *_, lab in s}))
    docs = list(nlp.pipe(TEXTS))
    for key in MEMBERS.values():
        assert sum(len(doc.spans[key]) for doc in docs) > 0, key
    # the members disagree somewhere, so the merge is not a copy of any one of them
    member_sets = [{(i, t) for i, doc in enumerate(docs) for t in spans_of(doc, key)} for key in MEMBERS.values()]
    assert len({frozenset(s) for s in member_sets}) > 1
    assert _check_merged(docs, list(MEMBERS.values())) > 0
    scores = nlp.evaluate(examples)
    assert scores["spans_nested_f"] > 0.5
    assert {f"spans_{key}_f" for key in MEMBERS.values()} <= set(scores)


@pytest.mark.slow
def test_find_threshold_tunes_the_ensemble(shared):
    _, _, path = shared
    best, best_score, scores = find_threshold(
        path / "model", path / "dev.spacy", "nested_ensemble", "threshold", "spans_nested_f", n_trials=5, silent=True
    )
    assert set(scores) == set(numpy.linspace(0, 1, 5))
    assert best_score == max(scores.values()) > 0.5
    assert scores[1.0] < best_score  # the threshold reached the merge
    override = spacy.load(path / "model", config={"components": {"nested_ensemble": {"threshold": 0.9}}})
    plain = spacy.load(path / "model")
    n_override = sum(len(d.spans["nested"]) for d in override.pipe(TEXTS))
    assert n_override < sum(len(d.spans["nested"]) for d in plain.pipe(TEXTS))


# --- setup (b): separately trained pipelines, sourced ---------------------------------------
@pytest.fixture(scope="module")
def separate(tmp_path_factory):
    """A locate_label and a proposer_regressor pipeline, each with its own tok2vec, trained and saved."""
    path = tmp_path_factory.mktemp("separate")
    for factory, n_iter in (("locate_label_ner", 12), ("proposer_regressor_ner", 12)):
        nlp = build_nlp(factory)
        train(nlp, make_examples(nlp), n_iter, learn_rate=0.01)
        nlp.to_disk(path / factory)
    return path


def sourced_pipeline(path: Path, replace_listeners: bool = True) -> Language:
    """The calls of the module docstring of spacy_nested.ensemble.component, setup (b)."""
    nlp = spacy.load(path / "locate_label_ner", config={"components": {"locate_label_ner": {"spans_key": "nested_ll"}}})
    name, key = "proposer_regressor_ner", "nested_pr"
    other = spacy.load(path / name, config={"components": {name: {"spans_key": key}}})
    if replace_listeners:
        other.replace_listeners("tok2vec", name, ["model.tok2vec"])
    nlp.add_pipe(name, source=other)
    nlp.add_pipe("nested_ensemble", config={"members": ["nested_ll", "nested_pr"], "threshold": 0.4})
    nlp.get_pipe("nested_ensemble").check_members(nlp)
    return nlp


@pytest.mark.slow
def test_sourced_members_keep_their_own_predictions_and_are_merged(separate, tmp_path):
    nlp = sourced_pipeline(separate)
    alone = {
        key: [spans_of(d) for d in spacy.load(separate / factory).pipe(TEXTS)]
        for factory, key in (("locate_label_ner", "nested_ll"), ("proposer_regressor_ner", "nested_pr"))
    }
    docs = list(nlp.pipe(TEXTS))
    for key, expected in alone.items():
        assert sum(map(len, expected)) > 0, key
        got = [spans_of(d, key) for d in docs]
        assert got == [pytest.approx(e, abs=1e-5) for e in expected], key  # exactly what its own pipeline predicts
    assert _check_merged(docs, ["nested_ll", "nested_pr"], threshold=0.4) > 0
    nlp.to_disk(tmp_path / "combined")
    loaded = spacy.load(tmp_path / "combined")
    assert [spans_of(d) for d in loaded.pipe(TEXTS)] == [pytest.approx(spans_of(d), abs=1e-5) for d in docs]


# --- tune-ensemble -------------------------------------------------------------------------
def test_weight_grid_holds_each_ratio_once_equal_first():
    grid = weight_grid(3)
    assert grid[0] == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert all(sum(w) == pytest.approx(1.0) for w in grid)
    assert len({tuple(round(x, 9) for x in w) for w in grid}) == len(grid)
    # 27 choices; (0.5, 0.5, 0.5) = (1, 1, 1) = (2, 2, 2) and, per position of the odd one out,
    # (0.5, 1, 1) = (1, 2, 2) and (0.5, 0.5, 1) = (1, 1, 2): 27 - 2 - 3 - 3
    assert len(grid) == 19
    assert any(w == pytest.approx((0.2, 0.4, 0.4)) for w in grid)  # (0.5, 1, 1)
    assert any(w == pytest.approx((0.5 / 3, 0.5 / 3, 2 / 3)) for w in grid)  # (0.5, 0.5, 2)


def test_tune_ensemble_predicts_once_picks_the_grid_maximum_and_saves_it(shared, tmp_path, monkeypatch):
    _, examples, path = shared
    predicted: Dict[str, int] = {}
    original, original_at = NestedSpanDetector.predict, NestedSpanDetector.predict_thresholds

    def counting(self, docs):
        docs = list(docs)
        predicted[self.name] = predicted.get(self.name, 0) + len(docs)
        return original(self, docs)

    def counting_at(self, docs, thresholds):
        docs = list(docs)
        predicted[self.name] = predicted.get(self.name, 0) + len(docs)
        return original_at(self, docs, thresholds)

    monkeypatch.setattr(NestedSpanDetector, "predict", counting)
    monkeypatch.setattr(NestedSpanDetector, "predict_thresholds", counting_at)
    found = tune_ensemble(path / "model", path / "dev.spacy", n_trials=6, output=tmp_path / "tuned")
    monkeypatch.setattr(NestedSpanDetector, "predict", original)
    monkeypatch.setattr(NestedSpanDetector, "predict_thresholds", original_at)
    assert predicted == {name: len(SENTENCES) for name in MEMBERS}  # each member's model once over dev
    trials = found["trials"]
    assert len(trials) == len(MEMBER_THRESHOLDS) * 19 * 6
    fs = [t["f"] for t in trials]
    assert found["best"]["f"] == max(fs) and found["best"] == trials[fs.index(max(fs))]
    assert len(set(fs)) > 1  # the grid is not flat here, so choosing matters
    tuned = spacy.load(tmp_path / "tuned")
    cfg = tuned.get_pipe("nested_ensemble").cfg
    assert cfg["weights"] == pytest.approx(found["best"]["weights"])
    assert cfg["threshold"] == pytest.approx(found["best"]["threshold"])
    assert tuned.config["components"]["nested_ensemble"]["threshold"] == pytest.approx(found["best"]["threshold"])
    # the members' thresholds of the best setting are saved with it
    assert [tuned.get_pipe(n).threshold for n in MEMBERS] == pytest.approx(found["best"]["member_thresholds"])
    # the saved pipeline, run from scratch and scored by nlp.evaluate, reaches the F1 the tuner reported
    assert tuned.evaluate(examples)["spans_nested_f"] == pytest.approx(found["best"]["f"], abs=1e-9)
    assert found["best"]["f"] >= found["configured"]["f"]


def test_tune_ensemble_member_thresholds_score_as_the_pipeline_run_with_them(shared, tmp_path):
    """Each trial's F1 is what the whole pipeline gives with its members at that threshold and the
    ensemble at that setting."""
    _, examples, path = shared
    found = tune_ensemble(path / "model", path / "dev.spacy", n_trials=3, member_thresholds=[None, 0.9], output=tmp_path / "t")
    own = [t for t in found["trials"] if t["member_setting"] == 0]
    high = [t for t in found["trials"] if t["member_setting"] == 1]
    assert high[0]["member_thresholds"] == [0.9] * 3 and own[0]["member_thresholds"] != high[0]["member_thresholds"]
    assert [t["f"] for t in own] != [t["f"] for t in high]  # the member threshold changes what is merged
    for trial in (own[1], high[1], high[4], high[-2]):
        config: Dict[str, dict] = {
            "nested_ensemble": {"weights": trial["weights"], "threshold": trial["threshold"]},
            **{n: {"threshold": t} for n, t in zip(MEMBERS, trial["member_thresholds"])},
        }
        nlp = spacy.load(path / "model", config={"components": config})
        assert nlp.evaluate(examples)["spans_nested_f"] == pytest.approx(trial["f"], abs=1e-9), trial


def test_tune_ensemble_vote_searches_min_votes(shared, tmp_path):
    _, examples, path = shared
    found = tune_ensemble(path / "model", path / "dev.spacy", rule="vote", member_thresholds=[None], output=tmp_path / "tuned")
    assert [t["min_votes"] for t in found["trials"]] == [1, 2, 3]
    best = max(t["f"] for t in found["trials"])
    assert found["best"]["f"] == best
    tuned = spacy.load(tmp_path / "tuned")
    assert tuned.get_pipe("nested_ensemble").cfg["rule"] == "vote"
    assert tuned.evaluate(examples)["spans_nested_f"] == pytest.approx(best, abs=1e-9)


def test_tune_ensemble_writes_all_or_nothing(shared, tmp_path, monkeypatch):
    _, _, path = shared
    output = tmp_path / "tuned"
    shutil.copytree(path / "model", output)  # an earlier output
    before = sorted(p.relative_to(output) for p in output.rglob("*"))

    def broken(self, target, *, exclude=tuple()):
        Path(target).mkdir(parents=True)
        (Path(target) / "config.cfg").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(Language, "to_disk", broken)
    with pytest.raises(OSError, match="disk full"):
        tune_ensemble(path / "model", path / "dev.spacy", n_trials=3, output=output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]  # no temporary folder left
    assert sorted(p.relative_to(output) for p in output.rglob("*")) == before
    assert (output / "config.cfg").read_text() != "half"


def test_tune_ensemble_command(shared):
    _, _, path = shared
    result = CliRunner().invoke(app, ["tune-ensemble", str(path / "model"), str(path / "dev.spacy"), "--trials", "3"])
    assert result.exit_code == 0, result.output
    assert f"best of {len(MEMBER_THRESHOLDS) * 57} settings: rule average" in result.output
    assert (path / "model-tuned" / "config.cfg").exists()
    result = CliRunner().invoke(app, ["tune-ensemble", str(path / "model"), str(path / "dev.spacy"), "--rule", "max"])
    assert result.exit_code == 2 and "--rule" in result.output
    for bad in ("own 1.5", "own own", "half"):
        args = ["tune-ensemble", str(path / "model"), str(path / "dev.spacy"), "--member-thresholds", bad]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "--member-thresholds" in result.output, (bad, result.output)
