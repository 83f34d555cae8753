"""``python -m spacy_nested distill``: the corpus a teacher labels, its record, and the student trained on it.

The teacher is the saved locate_label_ner of tests/fixtures/saved (trained on the nested fixture's
sentences, which it predicts with scores from 0.47 to 0.997). The training docs are the fixture's
sentences with part of their gold taken away (the last span of each) and one gold span relabelled,
so the teacher has spans to add and one to lose to the gold.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from typer.testing import CliRunner

from spacy_nested.__main__ import app
from spacy_nested.corpora.tokenizer import retokenized_as
from spacy_nested.distillation.corpus import DISTILL_FILE, TRAIN_FILE, UNLABELED_FILE, DistillSettings, write_corpus
from spacy_nested.distillation.teacher import TEACHER_KEY, load_teacher
from tests.detectors.nested_fixture import SENTENCES, make_doc

SAVED = Path(__file__).parents[1] / "fixtures" / "saved"
TEACHER = SAVED / "locate_label_ner"
STUDENT_CONFIG = SAVED / "boundary_offset_ner" / "config.cfg"  # another detector, trained from a full config
RELABELLED = (0, 0, 1, "RNA")  # sentence 0's (0, 1) protein made RNA in the gold: the teacher's protein conflicts
THRESHOLD = 0.9
UNLABELED = [
    "IL-2 receptor alpha chain is expressed in human T cells",
    "GATA-1 binds the c-fos promoter in Jurkat cells",
    "nothing here",
    " ".join(text for text, _ in SENTENCES),  # a long line: scores down to 0.47
]

Scored = Tuple[int, int, str, float]


def _gold() -> List[Tuple[str, List[Tuple[int, int, str]]]]:
    """The fixture's sentences, each without its last span, and sentence 0's (0, 1) relabelled."""
    out = []
    for i, (text, spans) in enumerate(SENTENCES):
        kept = list(spans[:-1])
        if i == RELABELLED[0]:
            kept = [(s, e, RELABELLED[3]) if (s, e) == RELABELLED[1:3] else (s, e, label) for s, e, label in kept]
        out.append((text, kept))
    return out


def _rows(doc: Doc, key: str) -> List[Scored]:
    group = doc.spans[key]
    return [(span.start, span.end, span.label_, float(score)) for span, score in zip(group, group.attrs["scores"])]


def _read(path: Path) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def _teacher_predictions(inputs) -> List[List[Scored]]:
    """What the teacher predicts, run on its own (the reference the corpus is checked against)."""
    nlp = spacy.load(TEACHER)
    return [_rows(doc, "nested") for doc in nlp.pipe(inputs)]


def _same(found: List[Scored], expected: List[Scored]) -> None:
    assert sorted(r[:3] for r in found) == sorted(r[:3] for r in expected)
    scores = dict(((r[:3]), r[3]) for r in expected)
    assert [r[3] for r in found] == pytest.approx([scores[r[:3]] for r in found], abs=1e-5)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Dict[str, Path]:
    folder = tmp_path_factory.mktemp("distill_inputs")
    vocab = spacy.blank("en").vocab
    DocBin(docs=[make_doc(vocab, text, spans) for text, spans in _gold()]).to_disk(folder / "train.spacy")
    DocBin(docs=[make_doc(vocab, text, spans) for text, spans in SENTENCES]).to_disk(folder / "dev.spacy")
    lines = [json.dumps({"id": f"u{i}", "text": text}) for i, text in enumerate(UNLABELED)]
    (folder / "unlabeled.jsonl").write_text("\n".join(lines) + "\n")
    return {"train": folder / "train.spacy", "dev": folder / "dev.spacy", "unlabeled": folder / "unlabeled.jsonl"}


@pytest.fixture(scope="module")
def corpus(inputs, tmp_path_factory) -> Path:
    """The corpus written by the library, targets at THRESHOLD."""
    out = tmp_path_factory.mktemp("distill") / "run" / "corpus"
    teacher = load_teacher(str(TEACHER), threshold=THRESHOLD)
    write_corpus(teacher, inputs["train"], out, DistillSettings(batch_size=3), unlabeled=inputs["unlabeled"])
    return out


def test_training_docs_hold_every_gold_span_plus_the_teachers_that_no_gold_span_has(corpus):
    docs = _read(corpus / TRAIN_FILE)
    vocab = spacy.blank("en").vocab
    predicted = _teacher_predictions(retokenized_as(make_doc(vocab, text, []), vocab) for text, _ in SENTENCES)
    assert len(docs) == len(SENTENCES)
    added = 0
    for doc, (text, gold), teacher in zip(docs, _gold(), predicted):
        assert doc.text == text
        merged = _rows(doc, "nested")
        assert [r for r in merged if r[:3] in set(gold)] == [(*g, 1.0) for g in sorted(gold)]  # every gold span, score 1
        bounds = {(s, e) for s, e, _ in gold}
        expected = [r for r in teacher if r[3] >= THRESHOLD and r[:2] not in bounds]
        _same([r for r in merged if r[:3] not in set(gold)], expected)
        added += len(expected)
        _same(_rows(doc, TEACHER_KEY), teacher)  # every teacher span, with its score
    assert added >= len(SENTENCES) - 1  # the teacher gives back the spans taken from the gold
    # the span taken from sentence 0's gold comes back from the teacher; its relabelled span stays the gold's only
    first = {r[:3] for r in _rows(docs[0], "nested")}
    assert SENTENCES[0][1][-1] in first
    s, e = RELABELLED[1:3]
    assert (s, e, RELABELLED[3]) in first and (s, e, "protein") not in first
    assert (s, e, "protein") in {r[:3] for r in _rows(docs[0], TEACHER_KEY)}


def test_unlabeled_docs_hold_exactly_the_teachers_spans_at_or_above_the_threshold(corpus):
    docs = _read(corpus / UNLABELED_FILE)
    predicted = _teacher_predictions(UNLABELED)
    assert [doc.text for doc in docs] == UNLABELED
    below = 0
    for doc, teacher in zip(docs, predicted):
        _same(_rows(doc, "nested"), [r for r in teacher if r[3] >= THRESHOLD])
        _same(_rows(doc, TEACHER_KEY), teacher)
        below += sum(r[3] < THRESHOLD for r in teacher)
    assert sum(len(doc.spans["nested"]) for doc in docs) > 10 and below > 0  # kept and dropped spans both


def test_the_record_counts_what_the_docbins_hold(corpus, inputs):
    record = json.loads((corpus / DISTILL_FILE).read_text())
    settings = record["settings"]
    assert record["paths"]["teacher"] == str(TEACHER.resolve()) and settings["teacher"]["fingerprint"].startswith("folder:")
    assert settings["threshold"] == THRESHOLD and settings["teacher"]["own_threshold"] == 0.45
    assert settings["inputs"]["unlabeled"][0]["records"] == len(UNLABELED)
    gold_spans = sum(len(spans) for _, spans in _gold())
    for name in (TRAIN_FILE, UNLABELED_FILE):
        docs, counts = _read(corpus / name), record["counts"][name]
        gold = gold_spans if name == TRAIN_FILE else 0
        assert counts["docs"] == len(docs) and counts["words"] == sum(len(doc) for doc in docs)
        assert counts["spans"] == sum(len(doc.spans["nested"]) for doc in docs) == counts["gold_spans"] + counts["teacher_spans"]
        assert counts["gold_spans"] == gold and counts["teacher_spans"] > 0
        assert counts["teacher_key_spans"] == sum(len(doc.spans[TEACHER_KEY]) for doc in docs)
    assert record["counts"][TRAIN_FILE]["teacher_conflicts"] == 1


def _run(*args):
    return CliRunner().invoke(app, ["distill", *map(str, args)])


def test_a_teacher_that_cannot_be_loaded_is_named_and_nothing_is_written(inputs, tmp_path):
    out = tmp_path / "out"
    result = _run(tmp_path / "no_such_teacher", STUDENT_CONFIG, out, "--train", inputs["train"], "--dev", inputs["dev"])
    assert result.exit_code == 1
    assert f"teacher {tmp_path / 'no_such_teacher'}: cannot load it" in result.output
    assert not out.exists()


def test_a_bad_unlabeled_record_stops_the_run_and_nothing_is_written(inputs, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(inputs["unlabeled"].read_text() + '{"id": "x", "txt": "no text field"}\n')
    out = tmp_path / "out"
    result = _run(TEACHER, STUDENT_CONFIG, out, "--train", inputs["train"], "--dev", inputs["dev"], "--unlabeled", bad,
                  "--corpus-only")  # fmt: skip
    assert result.exit_code == 1
    assert f"{bad}:5: no string field 'text'" in result.output
    assert not out.exists()  # the training docs were labelled first: gone with the rest


@Language.factory("distill_test_failing_teacher")
def _failing_teacher(nlp: Language, name: str) -> "FailingTeacher":
    return FailingTeacher()


class FailingTeacher:
    """Writes doc.spans['nested'] until it meets "Jurkat"."""

    cfg = {"spans_key": "nested"}

    def __call__(self, doc: Doc) -> Doc:
        if "Jurkat" in doc.text:
            raise RuntimeError("the teacher broke")
        doc.spans["nested"] = []
        return doc


def test_a_teacher_failing_midway_leaves_no_corpus(inputs, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("distill_test_failing_teacher")
    out = tmp_path / "run" / "corpus"
    with pytest.raises(RuntimeError, match="the teacher broke"):
        write_corpus(load_teacher(nlp), inputs["train"], out, DistillSettings(batch_size=1))
    assert not out.parent.exists()


def test_distill_writes_the_corpus_then_trains_the_student(inputs, tmp_path):
    out = tmp_path / "out"
    args = [TEACHER, STUDENT_CONFIG, out, "--train", inputs["train"], "--dev", inputs["dev"], "--unlabeled", inputs["unlabeled"]]
    first = _run(*args, "--corpus-only", "--training.max_steps", "4")
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in (out / "corpus").iterdir()) == sorted([DISTILL_FILE, TRAIN_FILE, UNLABELED_FILE])
    assert not (out / "model").exists() and "python -m spacy train" in first.output
    # the same command without --corpus-only reuses the corpus and trains
    second = _run(*args, "--training.max_steps", "4", "--training.eval_frequency", "2", "--system.seed", "1")
    assert second.exit_code == 0, second.output
    assert "reused" in second.output
    nlp = spacy.load(out / "model" / "model-last")
    assert nlp.get_pipe_meta("boundary_offset_ner").factory == "boundary_offset_ner"
    assert [name for name, _ in nlp.pipeline] == ["tok2vec", "boundary_offset_ner"]
    # another threshold is another corpus: refused, naming the difference
    third = _run(*args, "--teacher-threshold", "0.5", "--corpus-only")
    assert third.exit_code == 1 and "threshold: null then, 0.5 now" in third.output


def test_gold_train_targets_keep_the_gold_alone_and_the_teacher_aside(inputs, tmp_path):
    """--train-targets gold (self-training): the training docs' targets are their gold, every teacher span
    stays under `teacher`; the unlabeled docs are labelled as with the merge."""
    out = tmp_path / "corpus"
    teacher = load_teacher(str(TEACHER), threshold=THRESHOLD)
    settings = DistillSettings(batch_size=3, train_targets="gold")
    write_corpus(teacher, inputs["train"], out, settings, unlabeled=inputs["unlabeled"])
    docs = _read(out / TRAIN_FILE)
    assert len(docs) == len(SENTENCES)
    for doc, (_, gold) in zip(docs, _gold()):
        assert _rows(doc, "nested") == [(*g, 1.0) for g in sorted(gold)]
    assert sum(len(doc.spans[TEACHER_KEY]) for doc in docs) > len(SENTENCES)  # the teacher predicted, kept aside
    record = json.loads((out / DISTILL_FILE).read_text())
    assert record["counts"][TRAIN_FILE]["teacher_spans"] == 0 and record["settings"]["merge"].startswith("gold")
    unlabeled = _read(out / UNLABELED_FILE)
    assert sum(len(doc.spans["nested"]) for doc in unlabeled) > 10
    with pytest.raises(ValueError, match="train targets"):
        DistillSettings(train_targets="teacher")


def test_a_corpus_of_the_other_train_targets_is_refused(corpus, inputs):
    teacher = load_teacher(str(TEACHER), threshold=THRESHOLD)
    with pytest.raises(FileExistsError, match="merge"):
        gold = DistillSettings(batch_size=3, train_targets="gold")
        write_corpus(teacher, inputs["train"], corpus, gold, unlabeled=inputs["unlabeled"])
