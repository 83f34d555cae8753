"""The base pipe every nested span detector shares.

``NestedSpanDetector`` owns everything that is not a paper's equation: the
label set (sorted, or as given in ``[initialize.components.X.labels]``, stored
in ``cfg`` and so with the model), the spans key, cutting docs into segments
(sentences when sentence starts are set, bounded windows otherwise; with a
``window_overlap`` in ``cfg``, windows overlap and their spans are stitched), aligning
gold spans to the predicted tokens, writing ``doc.spans[key]`` with
``attrs["scores"]``, the ``update``/``get_loss`` contract and initialization.

A detector subclass fills in four hooks, all on the spaCy side of the bridge:

* ``predict_extras(segments)``: the integer inputs the head needs at
  inference (for example all seed spans);
* ``train_extras(segments, gold)``: the same at training time, plus the
  targets (gold-dependent sampling happens here, never inside torch);
* ``compute_loss(outputs, extras, targets)``: a torch loss over leaf tensors
  that wrap the head's outputs (spaCy keeps running ``backprop``);
* ``decode(outputs, extras, segments)``: one ``ScoredSpans`` per segment.

Loss values are checked: a NaN or infinite loss stops training with the
component name and update step.

Prediction runs the encoder once over the docs, then the head over chunks of
segments of at most ``predict_chunk_tokens`` tokens (``cfg``, default
``PREDICT_CHUNK_TOKENS``), decoding each chunk before the next: a batch of
short sentences is one chunk, and a 20,000-token document holds the head's
outputs for one chunk at a time instead of for all its windows. Segments are
independent, so chunking never changes a prediction.
"""
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate, torch2xp, xp2torch

from ..spans import ScoredSpans, Segment, segment_docs, stitch

GoldSpans = numpy.ndarray  # (G, 3): start, end, label index + 1, relative to a segment
PREDICT_CHUNK_TOKENS = 4096  # tokens of segments per forward pass of the head at prediction

# Factory defaults every detector shares: spaCy's CPU tok2vec inline under the head,
# the nested scorer, and F1 as the score to select on.
DEFAULT_TOK2VEC_CONFIG = """
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
"""
DEFAULT_SCORER = {"@scorers": "spacy_nested.nested_scorer.v1"}
DEFAULT_SCORE_WEIGHTS = {"spans_nested_f": 1.0, "spans_nested_p": 0.0, "spans_nested_r": 0.0}


def default_model(head_config: str) -> Config:
    """A factory's default ``model`` block: ``[model]`` settings + the shared tok2vec."""
    return Config().from_str(head_config + DEFAULT_TOK2VEC_CONFIG)["model"]


class NestedSpanDetector(TrainablePipe):
    """Base class of the nested span detectors (see module docstring)."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str,
        *,
        spans_key: str,
        max_length: Optional[int],
        scorer: Optional[Callable],
        **cfg: Any,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, Any] = {"labels": [], "spans_key": spans_key, "max_length": max_length, **cfg}
        self._n_updates = 0

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
        starts = [_sent_starts(doc) for doc in docs]
        return segment_docs(
            [len(doc) for doc in docs], starts, self.cfg.get("max_length"), self.cfg.get("window_overlap", 0)
        )

    def gold_for_segments(self, examples: Sequence[Example], segments: Sequence[Segment]) -> List[GoldSpans]:
        """Gold spans aligned to the predicted tokens, per segment, relative to its start."""
        per_doc = [self._aligned_gold(eg) for eg in examples]
        out = []
        for d, s, e in segments:
            spans = per_doc[d]
            inside = spans[(spans[:, 0] >= s) & (spans[:, 1] <= e)]
            out.append(inside - numpy.asarray([s, s, 0]))
        return out

    def _aligned_gold(self, eg: Example) -> numpy.ndarray:
        if self.key not in eg.reference.spans:
            return numpy.zeros((0, 3), dtype="int64")
        aligned = eg.get_aligned_spans_y2x(eg.reference.spans[self.key], allow_overlap=True)
        rows = [(sp.start, sp.end, self.label_index(sp.label_) + 1) for sp in aligned]
        return numpy.asarray(rows, dtype="int64").reshape(-1, 3)

    # --- hooks for subclasses ------------------------------------------
    def predict_extras(self, segments: Sequence[Segment]) -> Tuple[numpy.ndarray, ...]:
        raise NotImplementedError

    def train_extras(self, segments: Sequence[Segment], gold: Sequence[GoldSpans]) -> Tuple[Tuple[numpy.ndarray, ...], Any]:
        raise NotImplementedError

    def compute_loss(self, outputs: Sequence[torch.Tensor], extras: Tuple, targets: Any) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, outputs: Sequence[Any], extras: Tuple, segments: Sequence[Segment]) -> List[ScoredSpans]:
        raise NotImplementedError

    # --- prediction --------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[ScoredSpans]:
        docs = list(docs)
        segments = self.segments(docs)
        if not segments:
            return [ScoredSpans.empty() for _ in docs]
        vectors = self.model.get_ref("tok2vec").predict(docs)
        found: List[ScoredSpans] = []
        for chunk in chunk_segments(segments, self.cfg.get("predict_chunk_tokens", PREDICT_CHUNK_TOKENS)):
            extras = self.predict_extras(chunk)
            outputs = self.model.get_ref("head").predict((vectors, chunk, extras))
            found.extend(self.decode([self.model.ops.to_numpy(o) for o in outputs], extras, chunk))
        return _collect_by_doc(found, segments, len(docs))

    def set_annotations(self, docs: Iterable[Doc], predictions: List[ScoredSpans]) -> None:
        for doc, found in zip(docs, predictions):
            spans = [Span(doc, start, end, label=self.labels[label]) for start, end, label in found.spans.tolist()]
            group = SpanGroup(doc, name=self.key, spans=spans)
            group.attrs["scores"] = [float(s) for s in found.scores]
            doc.spans[self.key] = group

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
        gold = self.gold_for_segments(examples, segments)
        extras, targets = self.train_extras(segments, gold)
        set_dropout_rate(self.model, drop)
        outputs, backprop = self.model.begin_update((docs, segments, extras))
        loss, d_outputs = self.get_loss(examples, (outputs, extras, targets))
        backprop(d_outputs)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        self._n_updates += 1
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Tuple[Sequence[Any], Tuple, Any]) -> Tuple[float, List[Any]]:
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
        found = set()
        for eg in examples:
            found.update(sp.label_ for sp in eg.reference.spans.get(self.key, []))
        return sorted(found)


def softmax(logits: numpy.ndarray) -> numpy.ndarray:
    """Softmax over the last axis (numpy; decoding works on numpy outputs)."""
    if logits.size == 0:
        return logits
    z = numpy.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def chunk_segments(segments: Sequence[Segment], max_tokens: int) -> List[List[Segment]]:
    """Consecutive runs of segments of at most `max_tokens` tokens (a longer segment alone)."""
    chunks: List[List[Segment]] = []
    size = 0
    for segment in segments:
        n = segment[2] - segment[1]
        if not chunks or size + n > max_tokens:
            chunks.append([])
            size = 0
        chunks[-1].append(segment)
        size += n
    return chunks


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
