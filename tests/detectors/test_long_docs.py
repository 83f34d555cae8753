"""Any document length works: the cost a head pays is bounded by its window.

The heads count what their last forward pass scored (``n_scored`` and
friends); these tests push a 20,000-token document through every detector,
with and without sentence boundaries, and check those counters against the
structural bounds each detector promises (linear in the document length),
plus the invariants every prediction keeps. Every detector's default
segmenter cuts text without sentence starts into windows (locate_label's of
512 tokens, longer than any GENIA sentence). That the encoder too works on
bounded pieces is tested in ``test_blocked_encoding.py``; the peak memory of a
long line is measured by ``bench/long_line_memory.py``.
"""
from typing import List

import numpy
import pytest
from spacy.tokens import Doc

from spacy_nested.detectors.locate_label.component import LocateLabelNER
from spacy_nested.ml.bridge import get_torch_head
from spacy_nested.ml.detector import PREDICT_CHUNK_TOKENS
from tests.detectors.nested_fixture import LABELS, SENTENCES, build_nlp, make_examples

N_TOKENS = 20_000
WINDOW = 50  # max_length of boundary_offset and proposer_regressor in these tests (default 100)
OVERLAP = 10
LL_WINDOW, LL_OVERLAP = 512, 64  # locate_label's default segmenter


def _words(n: int) -> List[str]:
    pool = [w for text, _ in SENTENCES for w in text.split(" ")]
    return [pool[i % len(pool)] for i in range(n)]


def _long_doc(nlp, with_sentences: bool) -> Doc:
    doc = Doc(nlp.vocab, words=_words(N_TOKENS))
    if with_sentences:  # sentences of 9 tokens, plus one of 600 tokens (cut into windows)
        for tok in doc:
            tok.is_sent_start = tok.i % 9 == 0 and not 900 < tok.i < 1500
    return doc


@pytest.fixture(scope="module", params=["locate_label_ner", "boundary_offset_ner", "proposer_regressor_ner"])
def detector(request):
    config = {} if request.param == "locate_label_ner" else {"segmenter": {"max_length": WINDOW, "overlap": OVERLAP}}
    nlp = build_nlp(request.param, config=config)
    nlp.initialize(lambda: make_examples(nlp))
    return request.param, nlp


def _run(nlp, doc: Doc) -> Doc:
    for _, proc in nlp.pipeline:
        doc = proc(doc)
    return doc


def _assert_well_formed(doc: Doc) -> None:
    group = doc.spans["nested"]
    scores = numpy.asarray(group.attrs["scores"], dtype="float64")
    assert len(scores) == len(group)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert all(0 <= sp.start < sp.end <= len(doc) and sp.label_ in LABELS for sp in group)


def _covered(segments) -> int:
    return sum(e - s for _, s, e in segments)


@pytest.mark.slow
@pytest.mark.parametrize("with_sentences", [False, True], ids=["no-sentences", "sentences"])
def test_cost_of_a_20k_token_doc_is_bounded_by_the_window(detector, with_sentences):
    name, nlp = detector
    pipe = nlp.get_pipe(name)
    doc = _run(nlp, _long_doc(nlp, with_sentences))
    _assert_well_formed(doc)
    head = get_torch_head(pipe.model)
    segments = pipe.segments([doc])
    covered = _covered(segments)
    M = len(pipe.labels)
    if name == "locate_label_ner":
        width = max(pipe.seed_widths)
        assert (pipe.segmenter.max_length, pipe.segmenter.overlap) == (LL_WINDOW, LL_OVERLAP)
        assert max(e - s for _, s, e in segments) <= LL_WINDOW  # by default, windows: no segment is the whole doc
        assert covered <= N_TOKENS * LL_WINDOW / (LL_WINDOW - LL_OVERLAP)
        # the counters are those of the last forward pass: seeds of one chunk of the doc's segments
        assert 0 < head.n_scored <= width * (PREDICT_CHUNK_TOKENS + LL_WINDOW)  # K ≤ w·N seeds
        assert head.n_classified <= head.n_scored
        return
    assert max(e - s for _, s, e in segments) <= WINDOW
    assert covered <= N_TOKENS * WINDOW / (WINDOW - OVERLAP)  # windows overlap a bounded amount
    # the counters are those of the last forward pass: one chunk of the doc's windows
    chunk = PREDICT_CHUNK_TOKENS + WINDOW
    if name == "boundary_offset_ner":
        assert 0 < head.n_scored <= M * WINDOW * chunk  # Σ M·n² ≤ M·W·Σ n
        assert head.n_padded_peak <= M * max(head.max_cells, WINDOW * WINDOW)
    else:
        assert 0 < head.n_scored <= len(head.table) * chunk  # Q·C pointer cells
        assert head.n_attended <= WINDOW * chunk  # Σ n² attention pairs


def test_locate_label_windows_leave_sentences_whole():
    """The default window is longer than any GENIA sentence (at most 204 tokens): sentences,
    and docs without sentence starts up to 512 tokens, are one segment each, as without windows."""
    nlp = build_nlp("locate_label_ner")
    pipe = nlp.get_pipe("locate_label_ner")
    assert isinstance(pipe, LocateLabelNER)
    doc = Doc(nlp.vocab, words=_words(2000), sent_starts=[i % 204 == 0 for i in range(2000)])
    assert [e - s for _, s, e in pipe.segments([doc])] == [204] * 9 + [2000 - 9 * 204]
    assert pipe.segments([Doc(nlp.vocab, words=_words(512))]) == [(0, 0, 512)]


@pytest.mark.parametrize("name", ["boundary_offset_ner", "proposer_regressor_ner"])
def test_without_windows_a_windowed_detector_scores_the_whole_doc(name):
    """The counters are real: switching the windows off makes the cost quadratic."""
    nlp = build_nlp(name, config={"segmenter": {"max_length": None}})
    nlp.initialize(lambda: make_examples(nlp))
    _run(nlp, Doc(nlp.vocab, words=_words(400)))
    head = get_torch_head(nlp.get_pipe(name).model)
    quadratic = head.n_scored if name == "boundary_offset_ner" else head.n_attended
    assert quadratic >= 400 * 400
