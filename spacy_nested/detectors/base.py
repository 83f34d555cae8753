"""The base pipe every nested span detector shares.

``NestedSpanDetector`` owns everything that is not a paper's equation: the
label set (sorted, or as given in ``[initialize.components.X.labels]``, stored
in ``cfg`` and so with the model), the spans key, cutting docs into segments
(its ``segmenter``: sentences when sentence starts are set, bounded windows
otherwise, overlapping windows stitched), aligning gold spans to the predicted
tokens, writing ``doc.spans[key]`` with ``attrs["scores"]``, the
``update``/``get_loss`` contract and initialization. Prediction is the
model's (``ml.detector.predict_segments``: the encoder and the head, run
by run over bounded runs of segments).

Memory at prediction does not grow with a document's length: every
detector's default segmenter bounds the segments (windows of 100 tokens for
boundary_offset and proposer_regressor, 512 for locate_label, on text without
sentence starts), the default inline tok2vec is run on each run's tokens, in
pieces of at most 4,096 tokens with its receptive field as context (exactly
the vectors of the whole doc), the head's
inputs, seeds and outputs exist for one run of segments at a time, and the
stitching of windows (``spans.stitch``) holds no segment-by-segment array.
What remains per document is spaCy's Doc (~400 bytes per token), one small
result per segment, the spans found and the doc's feature columns (32 bytes
per token). A listener encoder keeps its upstream component's whole-doc
encoding (``ml/detector.py``).

A detector subclass fills in four hooks, all on the spaCy side of the bridge:

* ``predict_extras(segments)``: the integer inputs the head needs at
  inference (for example all seed spans);
* ``train_extras(segments, gold, scores)``: the same at training time, plus the
  targets (gold-dependent sampling happens here, never inside torch); ``scores``
  holds each gold span's score from the reference's ``attrs["scores"]`` (1.0
  where it has none), which a detector taking soft targets reads (a distilled
  corpus scores the teacher's spans);
* ``compute_loss(outputs, extras, targets)``: a torch loss over leaf tensors
  that wrap the head's outputs (spaCy keeps running ``backprop``);
* ``decode(outputs, extras, segments)``: one ``ScoredSpans`` per segment.

Top-level settings, kept in ``cfg`` as spancat keeps its threshold:
``threshold``, each detector's decision threshold on its own score (the
default leaves the paper's decoding unchanged), set by a load-time config
override or tuned by ``spacy find-threshold MODEL DATA COMPONENT threshold
spans_nested_f``; ``write_ents``, also write the longest non-overlapping
spans to ``doc.ents`` for tools that read only those.

Settings come in registered groups (``registrations.py``), built from the
factory's config: ``segmenter`` here, the rest in each detector. Each detector
module writes its factory out as a plain typed ``def`` (as spaCy's
``make_spancat``) whose defaults are its default config, and nowhere else.

Loss values are checked: a NaN or infinite loss stops training with the
component name and update step.
"""
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy
import torch
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate, torch2xp, xp2torch

from spacy_nested import registrations  # noqa: F401  (the registered functions the factories' configs name)
from spacy_nested.ml.detector import predict_segments
from spacy_nested.spans import ScoredSpans, Segment, Segmenter, stitch

GoldSpans = numpy.ndarray  # (G, 3): start, end, label index + 1, relative to a segment
GoldScores = numpy.ndarray  # (G,): each gold span's score in [0, 1], 1.0 for plain gold
Extras = Tuple[Any, ...]

# What every detector's default config shares: spaCy's CPU tok2vec inline under the
# head, and the nested scorer. F1 is the score to select on. At prediction the inline
# tok2vec runs on the tokens of one run of the head's segments at a time, in pieces of at most
# 4,096 tokens plus its receptive field (4 tokens) on each side (ml/detector.py), so its
# working set does not grow with a document's length.
SHARED_DEFAULT_CONFIG = """
[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
rows = [5000, 1000, 2500, 2500]
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
window_size = 1
maxout_pieces = 3
depth = 4

[scorer]
@scorers = "spacy_nested.nested_scorer.v1"
"""
# The segmenter of the windowed detectors (boundary_offset, proposer_regressor): text without
# sentence starts is cut into windows of 100 tokens, BOPN's chunk size, that overlap by 25.
WINDOWED_DEFAULT_CONFIG = """
[segmenter]
@misc = "spacy_nested.segments.v1"
max_length = 100
overlap = 25
"""
DEFAULT_SCORE_WEIGHTS: Dict[str, Optional[float]] = {"spans_nested_f": 1.0, "spans_nested_p": 0.0, "spans_nested_r": 0.0}


def default_config(detector_config: str, *, threshold: float) -> Dict[str, Any]:
    """A factory's default config: its own blocks, the shared ones and the top-level settings.

    ``threshold``: the detector's decision threshold on its own score (see ``NestedSpanDetector``).
    """
    sections = Config().from_str(detector_config + SHARED_DEFAULT_CONFIG)
    return {"spans_key": "nested", "threshold": threshold, "write_ents": False, **sections}


class NestedSpanDetector(TrainablePipe):
    """Base class of the nested span detectors (see module docstring)."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        spans_key: str,
        threshold: float,
        write_ents: bool,
        segmenter: Segmenter,
        scorer: Optional[Callable],
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.segmenter = segmenter
        # What the config sets wins over what a saved pipeline's cfg holds, so that a load-time
        # override (spacy.load(path, config=...), spacy find-threshold) changes the predictions.
        self._configured: Dict[str, Any] = {"spans_key": spans_key, "threshold": threshold, "write_ents": write_ents}
        self.cfg: Dict[str, Any] = {"labels": [], **self._configured}
        self._n_updates = 0

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "NestedSpanDetector":
        super().from_bytes(bytes_data, exclude=exclude)
        self.cfg.update(self._configured)
        return self

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "NestedSpanDetector":
        super().from_disk(path, exclude=exclude)
        self.cfg.update(self._configured)
        return self

    @property
    def threshold(self) -> float:
        """The decision threshold on the detector's score (``cfg``, as spancat's)."""
        return float(self.cfg["threshold"])

    # --- labels and keys -------------------------------------------------
    @property
    def key(self) -> str:
        return str(self.cfg["spans_key"])

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(Errors.E187)
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def label_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(
                f"[{self.name}] gold span label '{label}' is not in the component's label set "
                f"{list(self.labels)}; the labels were fixed at initialize. Re-initialize the "
                f"component or list the label in [initialize.components.{self.name}.labels]."
            ) from None

    # --- segments ----------------------------------------------------------
    def segments(self, docs: Sequence[Doc]) -> List[Segment]:
        """Sentences when the doc has sentence starts, else bounded windows."""
        return self.segmenter([len(doc) for doc in docs], [_sent_starts(doc) for doc in docs])

    def gold_for_segments(self, examples: Sequence[Example], segments: Sequence[Segment]) -> List[GoldSpans]:
        """Gold spans aligned to the predicted tokens, per segment, relative to its start."""
        return self.scored_gold_for_segments(examples, segments)[0]

    def scored_gold_for_segments(
        self, examples: Sequence[Example], segments: Sequence[Segment]
    ) -> Tuple[List[GoldSpans], List[GoldScores]]:
        """``gold_for_segments`` and, row for row, each gold span's score (1.0 unless the reference's
        span group has ``attrs["scores"]``)."""
        per_doc = [self._aligned_gold(eg) for eg in examples]
        spans_out, scores_out = [], []
        for d, s, e in segments:
            spans, scores = per_doc[d]
            inside = (spans[:, 0] >= s) & (spans[:, 1] <= e)
            spans_out.append(spans[inside] - numpy.asarray([s, s, 0]))
            scores_out.append(scores[inside])
        return spans_out, scores_out

    def _aligned_gold(self, eg: Example) -> Tuple[GoldSpans, GoldScores]:
        if self.key not in eg.reference.spans:
            return numpy.zeros((0, 3), dtype="int64"), numpy.zeros(0, dtype="float32")
        group = eg.reference.spans[self.key]
        given = group.attrs.get("scores")
        scored: Dict[Tuple[int, int, str], float] = {}
        if given is not None and len(given) == len(group):
            for span, score in zip(group, given):
                where = (span.start_char, span.end_char, span.label_)
                scored[where] = max(scored.get(where, 0.0), float(score))
        aligned = eg.get_aligned_spans_y2x(group, allow_overlap=True)
        rows = [(sp.start, sp.end, self.label_index(sp.label_) + 1) for sp in aligned]
        # the texts of an Example's two docs are the same, so character offsets find a span's score
        scores = [scored.get((sp.start_char, sp.end_char, sp.label_), 1.0) for sp in aligned]
        return numpy.asarray(rows, dtype="int64").reshape(-1, 3), numpy.asarray(scores, dtype="float32")

    # --- hooks for subclasses ------------------------------------------
    def predict_extras(self, segments: Sequence[Segment]) -> Extras:
        raise NotImplementedError

    def train_extras(
        self, segments: Sequence[Segment], gold: Sequence[GoldSpans], scores: Optional[Sequence[GoldScores]] = None
    ) -> Tuple[Extras, Any]:
        raise NotImplementedError

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Extras, targets: Any) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, outputs: Sequence[numpy.ndarray], extras: Extras, segments: Sequence[Segment]) -> List[ScoredSpans]:
        raise NotImplementedError

    # --- prediction --------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[ScoredSpans]:
        docs = list(docs)
        segments = self.segments(docs)
        found = predict_segments(self.model, docs, segments, extras=self.predict_extras, decode=self.decode)
        return _collect_by_doc(found, segments, len(docs))

    def predict_thresholds(self, docs: Iterable[Doc], thresholds: Sequence[float]) -> List[List[ScoredSpans]]:
        """``predict`` at each of ``thresholds`` (one list per threshold), running the model once.

        The decoders read ``self.threshold`` at every call, so only decoding is repeated; this is
        what makes threshold tuning (``spacy_nested.evaluation.thresholds``) cost one prediction.
        """
        docs = list(docs)
        segments = self.segments(docs)
        thresholds = [float(t) for t in thresholds]
        if not thresholds:
            return []
        configured = self.cfg["threshold"]

        def decode_at_each(outputs: Sequence[numpy.ndarray], extras: Extras, chunk: Sequence[Segment]) -> List[List[ScoredSpans]]:
            """Per segment of the run: its spans at each threshold."""
            at_each = []
            for threshold in thresholds:
                self.cfg["threshold"] = threshold
                at_each.append(self.decode(outputs, extras, chunk))
            return [list(per_segment) for per_segment in zip(*at_each)]

        try:
            found = predict_segments(self.model, docs, segments, extras=self.predict_extras, decode=decode_at_each)
        finally:
            self.cfg["threshold"] = configured
        return [_collect_by_doc([f[i] for f in found], segments, len(docs)) for i in range(len(thresholds))]

    def set_annotations(self, docs: Iterable[Doc], predictions: List[ScoredSpans]) -> None:
        for doc, found in zip(docs, predictions):
            spans = [Span(doc, start, end, label=self.labels[label]) for start, end, label in found.spans.tolist()]
            group = SpanGroup(doc, name=self.key, spans=spans)
            group.attrs["scores"] = [float(s) for s in found.scores]
            doc.spans[self.key] = group
            if self.cfg["write_ents"]:
                doc.ents = filter_spans(spans)  # the longest non-overlapping spans

    # --- training ------------------------------------------------------------
    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        docs = [eg.predicted for eg in examples]
        segments = self.segments(docs)
        if not segments:
            return losses
        gold, scores = self.scored_gold_for_segments(examples, segments)
        extras, targets = self.train_extras(segments, gold, scores)
        set_dropout_rate(self.model, drop)
        outputs, backprop = self.model.begin_update((docs, segments, extras))
        loss, d_outputs = self.get_loss(examples, (outputs, extras, targets))
        backprop(d_outputs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        self._n_updates += 1
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Tuple[Sequence[Any], Extras, Any]) -> Tuple[float, List[Any]]:
        """Torch loss on leaf copies of the outputs; returns (loss, d_outputs)."""
        outputs, extras, targets = scores
        leaves = [_leaf(o) for o in outputs]
        loss = self.compute_loss(leaves, extras, targets)
        value = float(loss.detach())
        if not numpy.isfinite(value):
            raise ValueError(f"[{self.name}] loss is {value} at update step {self._n_updates}; training stopped.")
        wanted = [leaf for leaf in leaves if leaf.requires_grad]
        grads = torch.autograd.grad(loss, wanted, allow_unused=True) if wanted and loss.requires_grad else []
        by_id = {id(leaf): g for leaf, g in zip(wanted, grads)}
        d_outputs: List[Any] = []
        for out, leaf in zip(outputs, leaves):
            if not leaf.requires_grad:
                d_outputs.append(None)
            else:
                grad = by_id.get(id(leaf))
                d_outputs.append(torch2xp(grad) if grad is not None else out * 0)
        return value, d_outputs

    # --- initialization --------------------------------------------------------
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        found = list(labels) if labels is not None else self._labels_from(get_examples())
        # (Re)initializing sets the label set wholesale; add_label refuses once sized.
        self.cfg["labels"] = list(dict.fromkeys(str(label) for label in found))
        for label in self.labels:
            self.vocab.strings.add(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] no labels: the training data has no spans under doc.spans['{self.key}'] "
                f"and no labels were given. Check spans_key (it is '{self.key}') and the corpus."
            )
        sample = list(islice(get_examples(), 10))
        docs = [eg.predicted for eg in sample]
        segments = self.segments(docs)
        extras = self.predict_extras(segments) if segments else ()
        self.model.initialize(X=(docs, segments, extras), Y=list(self.labels))

    def _labels_from(self, examples: Iterable[Example]) -> List[str]:
        found: Set[str] = set()
        for eg in examples:
            found.update(sp.label_ for sp in eg.reference.spans.get(self.key, []))
        return sorted(found)


def _leaf(output: Any) -> torch.Tensor:
    """A fresh torch tensor over a model output: a grad-requiring leaf for floats."""
    return xp2torch(output, requires_grad=output.dtype.kind == "f")


def _sent_starts(doc: Doc) -> Optional[List[int]]:
    if not doc.has_annotation("SENT_START"):
        return None
    return [tok.i for tok in doc if tok.is_sent_start]


def _collect_by_doc(found: Sequence[ScoredSpans], segments: Sequence[Segment], n_docs: int) -> List[ScoredSpans]:
    parts: List[List[ScoredSpans]] = [[] for _ in range(n_docs)]
    bounds: List[List[Tuple[int, int]]] = [[] for _ in range(n_docs)]
    for result, (d, s, e) in zip(found, segments):
        parts[d].append(result.shifted(s))
        bounds[d].append((s, e))
    return [stitch(p, b) for p, b in zip(parts, bounds)]
