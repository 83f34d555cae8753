"""The span detector model: an encoder, then a torch head over segments.

``build_span_detector(tok2vec, head, attrs=...)`` chains any
``Model[List[Doc], List[Floats2d]]`` (``spacy.Tok2VecListener.v1``,
``spacy-transformers.TransformerListener.v1``, an inline ``spacy.Tok2Vec.v2``)
with the torch head wrapped by ``bridge.wrap_head``. It exposes the refs
``tok2vec`` and ``head`` (as spancat's model does) and, in ``model.attrs``,
the head settings the component needs to build targets and decode (the
architecture puts them there), plus ``chunk_tokens``.

The model owns both of its uses:

* training: ``model.begin_update((docs, segments, extras))`` gives the
  head's outputs and one backprop through head and encoder;
* prediction: ``predict_segments(model, docs, segments, extras=..., decode=...)``
  runs the encoder once over the docs, then the head over runs of segments of
  similar length (sorted, ``spans.chunk_segments``) of at most
  ``model.attrs["chunk_tokens"]`` padded tokens, decoding each run before
  scoring the next: a 20,000-token document holds the head's outputs of one run
  at a time instead of those of all its windows, and a run is padded to a
  length close to each of its segments' (in a batch of GENIA sentences in text
  order, the longest is about three times the mean, and the attention and span
  grids grow with its square). Segments are independent, so neither the runs
  nor their order change a prediction.

Both go through ``_score``, the one place where encoder output meets the head.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, cast

import torch
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

from ..spans import Segment, chunk_segments
from .bridge import Extras, resize_head, wrap_head

DetectorInput = Tuple[List[Doc], List[Segment], Extras]
ExtrasFn = Callable[[Sequence[Segment]], Extras]
Decoded = TypeVar("Decoded")  # what decoding gives per segment: its spans (or its spans at each threshold)
DecodeFn = Callable[[Sequence[Any], Extras, Sequence[Segment]], List[Decoded]]
PREDICT_CHUNK_TOKENS = 4096  # padded tokens (segments x the longest) per forward pass of the head at prediction


def build_span_detector(
    tok2vec: Model[List[Doc], List[Floats2d]],
    head: torch.nn.Module,
    *,
    attrs: Dict[str, Any],
    mixed_precision: bool,
    learn_rate_scale: float,
) -> Model[DetectorInput, Tuple[Any, ...]]:
    """chain(tok2vec, torch head) with segment padding between them; the head's parameters step
    at ``learn_rate_scale`` times the optimizer's learning rate."""
    wrapper = wrap_head(head, mixed_precision=mixed_precision, learn_rate_scale=learn_rate_scale)
    return Model(
        "span_detector",
        forward,
        init=init,
        layers=[tok2vec, wrapper],
        refs={"tok2vec": tok2vec, "head": wrapper},
        dims={"nI": None, "nO": None},
        attrs={"chunk_tokens": PREDICT_CHUNK_TOKENS, **attrs},
    )


def forward(model: Model, inputs: DetectorInput, is_train: bool) -> Tuple[Tuple[Any, ...], Callable]:
    docs, segments, extras = inputs
    vectors, backprop_tok2vec = model.get_ref("tok2vec")(docs, is_train)
    outputs, backprop_head = _score(model, vectors, segments, extras, is_train)

    def backprop(d_outputs: Sequence[Any]) -> Any:
        return backprop_tok2vec(backprop_head(d_outputs))

    return outputs, backprop


def predict_segments(
    model: Model, docs: List[Doc], segments: Sequence[Segment], *, extras: ExtrasFn, decode: "DecodeFn[Decoded]"
) -> List[Decoded]:
    """What ``decode`` gives for every segment, in the order of ``segments`` (see the module docstring).

    ``extras(chunk)`` gives the head's integer inputs for a run of segments,
    ``decode(outputs, extras, chunk)`` one result per segment of the run (its
    ``ScoredSpans``) from the head's outputs as numpy arrays. The runs are in
    length order, not in the order of ``segments``.
    """
    if not segments:
        return []
    vectors = model.get_ref("tok2vec").predict(docs)
    found: List[Optional[Decoded]] = [None] * len(segments)
    for indices in chunk_segments(segments, int(model.attrs["chunk_tokens"])):
        chunk = [segments[i] for i in indices]
        chunk_extras = extras(chunk)
        outputs, _ = _score(model, vectors, chunk, chunk_extras, False)
        decoded = decode([model.ops.to_numpy(o) for o in outputs], chunk_extras, chunk)
        if len(decoded) != len(chunk):
            raise ValueError(f"decode gave {len(decoded)} results for a run of {len(chunk)} segments")
        for i, result in zip(indices, decoded):
            found[i] = result
    return cast(List[Decoded], found)


def _score(
    model: Model, vectors: List[Floats2d], segments: Sequence[Segment], extras: Extras, is_train: bool
) -> Tuple[Tuple[Any, ...], Callable]:
    return model.get_ref("head")((vectors, list(segments), extras), is_train)


def init(model: Model, X: Optional[DetectorInput] = None, Y: Optional[Sequence[str]] = None) -> None:
    """Initialize the encoder, then size the head: ``Y`` is the label list."""
    if Y is None:
        raise ValueError("Initialize a span detector with Y = its list of labels.")
    tok2vec = model.get_ref("tok2vec")
    docs = X[0] if X is not None else None
    tok2vec.initialize(X=docs)
    n_in = _output_width(tok2vec, docs)
    model.set_dim("nI", n_in, force=True)
    model.set_dim("nO", len(Y), force=True)
    resize_head(model.get_ref("head"), n_in, len(Y))


def _output_width(tok2vec: Model, docs: Optional[List[Doc]]) -> int:
    for node in [tok2vec, *tok2vec.walk()]:
        if node.has_dim("nO") and node.get_dim("nO"):
            return int(node.get_dim("nO"))
    if docs:
        return int(tok2vec.predict(docs[:1])[0].shape[1])
    raise ValueError("Cannot infer the encoder width: give the listener a width or initialize with examples.")
