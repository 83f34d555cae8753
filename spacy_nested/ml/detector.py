"""The span detector model: an encoder, then a torch head over segments.

``build_span_detector(tok2vec, head, attrs=...)`` chains any
``Model[List[Doc], List[Floats2d]]`` (``spacy.Tok2VecListener.v1``,
``spacy-transformers.TransformerListener.v1``, an inline ``spacy.Tok2Vec.v2``)
with the torch head wrapped by ``bridge.wrap_head``. It exposes the refs
``tok2vec`` and ``head`` (as spancat's model does) and, in ``model.attrs``,
the head settings the component needs to build targets and decode (the
architecture puts them there), plus ``chunk_tokens`` and ``block_tokens``.

The model owns both of its uses:

* training: ``model.begin_update((docs, segments, extras))`` gives the
  head's outputs and one backprop through head and encoder;
* prediction: ``predict_segments(model, docs, segments, extras=..., decode=...)``
  runs the encoder, then the head over runs of segments of similar length
  (sorted, ``spans.chunk_segments``) of at most ``model.attrs["chunk_tokens"]``
  padded tokens, decoding each run before scoring the next: a 20,000-token
  document holds the head's outputs of one run at a time instead of those of
  all its windows, and a run is padded to a length close to each of its
  segments' (in a batch of GENIA sentences in text order, the longest is about
  three times the mean, and the attention and span grids grow with its square).
  Segments are independent, so neither the runs nor their order change a
  prediction.

Bounded encoding at prediction. thinc's ``chain`` keeps every layer's backprop
closure, and so its intermediate arrays, until the chain returns, even at
prediction: spaCy's CPU tok2vec (``spacy.Tok2Vec.v2``, MultiHashEmbed and a
MaxoutWindowEncoder of depth 4, width 96) holds about 15 KB per token while
it runs: 1.3 GB over one 500,000-character line (90,000 tokens). Its receptive field is finite: a
token's vector depends on the tokens at most ``receptive_field(tok2vec)``
positions away (the sum of its ``expand_window`` widths; 4 for that encoder),
and spaCy pads every doc with that many zero rows, so encoding a stretch of a
doc with that many context tokens on each side gives exactly the vectors the
whole doc gives. Prediction therefore encodes run by run (``run_vectors``):
the segments of a run (the same runs as with whole-doc encoding, so the head
sees the same batches) are merged into token ranges where they overlap or
nearly touch (the consecutive windows of a long line make one range), the
ranges are encoded in pieces of at most ``model.attrs["block_tokens"]``
tokens (``PREDICT_BLOCK_TOKENS``) plus the context on each side, and the
run's vectors are dropped once it is scored. The working set is bounded by a
run and a piece, not by the document, as long as the segmenter bounds the
segments (a segment longer than a run is scored alone, its vectors computed
piece by piece). The price is the context tokens encoded twice: up to twice
the receptive field per range (8 tokens per sentence of a many-sentence doc
whose neighbours fall into other runs; nothing between consecutive windows,
nothing for a doc per sentence).

Freed memory between runs. Runs of different shapes (locate_label's filtered
seeds, sentences of varying length) fragment glibc's heap when oneDNN's kernel
cache is on (torch's default outside training; see ``ml/bridge.py``): a
kernel cached for each new shape sits between a run's large freed buffers,
which glibc then neither reuses nor returns. Measured on one 500,000-character
line through locate_label (26 runs), the RSS grew by ~30 MB per run, and so
without end over a longer line, while the memory in use stayed flat: the call
peaked 485 MB above its start. So when the RSS after a run is more than
``PREDICT_TRIM_MB`` above the RSS after the first run of the call (or the
first after the last trim, when the memory a run needs has been taken back),
the heap's free pages are given back (glibc's ``malloc_trim(0)``, a few ms;
nowhere else). The same call then peaked 280 MB above its start. Runs of
the same shapes (the windows of boundary_offset and proposer_regressor) reuse
the memory they free and are not trimmed.

This applies only when the receptive field is known: every layer of the
encoder works token by token (``TOKENWISE_LAYERS``) or is an
``expand_window``. A listener (``spacy.Tok2VecListener.v1``,
``spacy-transformers.TransformerListener.v1``: the vectors are computed
upstream, over whole docs, by another component), an encoder with a BiLSTM or
any other layer of unknown reach, or ``block_tokens = 0``, keep encoding whole
docs in one call, as before. The doc-reading layers (``FeatureExtractor``,
``StaticVectors``) see a piece as a ``DocSlice``; their feature columns are
read once per doc and prediction call (8 bytes per token and column: 32 for
the default four, against spaCy's ~400 per token for the Doc itself).

Both go through ``_score``, the one place where encoder output meets the head.
"""
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union, cast

import torch
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

from spacy_nested.ml.bridge import Extras, give_heap_back, resize_head, wrap_head
from spacy_nested.spans import Segment, chunk_segments

DetectorInput = Tuple[List[Doc], List[Segment], Extras]
ExtrasFn = Callable[[Sequence[Segment]], Extras]
Decoded = TypeVar("Decoded")  # what decoding gives per segment: its spans (or its spans at each threshold)
DecodeFn = Callable[[Sequence[Any], Extras, Sequence[Segment]], List[Decoded]]
PREDICT_CHUNK_TOKENS = 4096  # padded tokens (segments x the longest) per forward pass of the head at prediction
# Tokens per piece a run's ranges are encoded in at prediction (plus the receptive field on each
# side; see the module docstring): bounds the encoder's working set, ~15 KB per token for spaCy's
# CPU tok2vec (60 MB a piece). 0: whole docs in one call.
PREDICT_BLOCK_TOKENS = 4096
PREDICT_TRIM_MB = 64  # RSS growth between runs of the head after which the heap's free pages go back
# Layers that compute each token's output from that token's input alone (thinc modules, and the
# doc-reading layers of spaCy that accept a DocSlice): with expand_window, the layers whose
# receptive field is known. Anything else (a listener, an LSTM, a transformer) disables blocking.
TOKENWISE_LAYERS = frozenset(
    [f"thinc.layers.{name}" for name in (
        "add", "array_getitem", "chain", "clipped_linear", "clone", "concatenate", "dish", "dropout", "embed",
        "gelu", "hard_swish", "hard_swish_mobilenet", "hashembed", "layernorm", "linear", "list2ragged",
        "logistic", "maxout", "mish", "noop", "premap_ids", "ragged2list", "relu", "remap_ids", "residual",
        "sigmoid", "sigmoid_activation", "softmax", "softmax_activation", "swish", "uniqued", "with_array",
    )]
    + ["spacy.ml.featureextractor", "spacy.ml.staticvectors"]
)


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
        attrs={"chunk_tokens": PREDICT_CHUNK_TOKENS, "block_tokens": PREDICT_BLOCK_TOKENS, **attrs},
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
    tok2vec = model.get_ref("tok2vec")
    block_tokens = int(model.attrs.get("block_tokens", PREDICT_BLOCK_TOKENS) or 0)
    field = receptive_field(tok2vec) if block_tokens > 0 else None
    whole = tok2vec.predict(docs) if field is None else None  # as the encoder is trained: whole docs, one call
    tables: Dict[Tuple[int, Any], Any] = {}
    found: List[Optional[Decoded]] = [None] * len(segments)
    heap = _HeapTrimmer()
    for indices in chunk_segments(segments, int(model.attrs["chunk_tokens"])):
        chunk = [segments[i] for i in indices]
        if whole is None:
            vectors, local = run_vectors(tok2vec, docs, chunk, cast(int, field), block_tokens, tables)
        else:
            vectors, local = whole, chunk
        chunk_extras = extras(chunk)
        outputs, _ = _score(model, vectors, local, chunk_extras, False)
        del vectors
        decoded = decode([model.ops.to_numpy(o) for o in outputs], chunk_extras, chunk)
        if len(decoded) != len(chunk):
            raise ValueError(f"decode gave {len(decoded)} results for a run of {len(chunk)} segments")
        for i, result in zip(indices, decoded):
            found[i] = result
        heap.after_run()
    return cast(List[Decoded], found)


def _rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE / 2**20
    except (OSError, ValueError, IndexError):
        return None


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _HeapTrimmer:
    """Gives the heap's free pages back when the RSS after a run is more than ``PREDICT_TRIM_MB``
    above the RSS after the first run since the call began or last trimmed (which holds the
    memory a run needs, kept by glibc for the next): growth, not the runs' own working set (see
    the module docstring)."""

    def __init__(self) -> None:
        self.reference: Optional[float] = None

    def after_run(self) -> None:
        rss = _rss_mb()
        if rss is None:
            return
        if self.reference is None:
            self.reference = rss
        elif rss > self.reference + PREDICT_TRIM_MB:
            give_heap_back()
            self.reference = None  # the next run takes its memory back: measure from after it


def receptive_field(tok2vec: Model) -> Optional[int]:
    """How many tokens on each side of a token its vector depends on; None when not known.

    Known when every layer of ``tok2vec`` is token-wise (``TOKENWISE_LAYERS``) or an
    ``expand_window``: the sum of the windows (an upper bound, exact for layers in series).
    """
    field = 0
    for node in tok2vec.walk():
        module = getattr(getattr(node, "_func", None), "__module__", None)
        if module == "thinc.layers.expand_window":
            field += int(node.attrs["window_size"])
        elif module not in TOKENWISE_LAYERS:
            return None
    return field


def run_vectors(
    tok2vec: Model,
    docs: List[Doc],
    chunk: Sequence[Segment],
    field: int,
    block_tokens: int,
    tables: Dict[Tuple[int, Any], Any],
) -> Tuple[List[Floats2d], List[Segment]]:
    """The vectors of a run of segments, and the segments as (range, start, end) into them.

    The segments of a doc that overlap or lie within ``2 * field`` tokens of each other share a
    token range (consecutive windows of a long line make one range), and each range is encoded
    by ``_encode_ranges``: the vectors of the whole doc for those tokens, at the cost of the run.
    """
    ranges: List[Tuple[int, int, int]] = []
    where = [0] * len(chunk)
    for j in sorted(range(len(chunk)), key=lambda k: chunk[k]):
        d, s, e = chunk[j]
        if ranges and ranges[-1][0] == d and s <= ranges[-1][2] + 2 * field:
            ranges[-1] = (d, ranges[-1][1], max(ranges[-1][2], e))
        else:
            ranges.append((d, s, e))
        where[j] = len(ranges) - 1
    local = [(r, s - ranges[r][1], e - ranges[r][1]) for r, (_, s, e) in zip(where, chunk)]
    return _encode_ranges(tok2vec, docs, ranges, field, block_tokens, tables), local


def _encode_ranges(
    tok2vec: Model,
    docs: List[Doc],
    ranges: Sequence[Tuple[int, int, int]],
    field: int,
    block_tokens: int,
    tables: Dict[Tuple[int, Any], Any],
) -> List[Floats2d]:
    """The vectors of each range's tokens, encoded in pieces of at most ``block_tokens`` tokens,
    each with ``field`` tokens of context on either side (fewer at a doc's edges)."""
    parts: List[List[Floats2d]] = [[] for _ in ranges]
    batch: List[Tuple[int, int, int, "DocSlice"]] = []  # (range, left margin, tokens kept, slice)
    size = 0

    def flush() -> None:
        for (r, left, n, _), vectors in zip(batch, tok2vec.predict([view for *_, view in batch])):
            parts[r].append(vectors[left : left + n])
        batch.clear()

    for r, (d, lo, hi) in enumerate(ranges):
        for start in range(lo, hi, block_tokens) or [lo]:  # an empty range: one empty piece
            end = min(hi, start + block_tokens)
            a, b = max(0, start - field), min(len(docs[d]), end + field)
            if batch and size + (b - a) > block_tokens + 2 * field:
                flush()
                size = 0
            batch.append((r, start - a, end - start, DocSlice(docs[d], a, b, tables)))
            size += b - a
    if batch:
        flush()
    xp = tok2vec.ops.xp
    return [p[0] if len(p) == 1 else xp.concatenate(p) for p in parts]


class DocSlice:
    """The tokens ``[start, end)`` of a doc, as the doc-reading layers of a tok2vec read a doc
    (``len``, ``vocab``, ``to_array``), without copying the doc. ``to_array`` reads the doc's
    columns once per doc and call into ``tables`` and slices them."""

    def __init__(self, doc: Doc, start: int, end: int, tables: Dict[Tuple[int, Any], Any]) -> None:
        self.doc, self.start, self.end, self._tables = doc, start, end, tables

    @property
    def vocab(self) -> Any:
        return self.doc.vocab

    def __len__(self) -> int:
        return self.end - self.start

    def to_array(self, attrs: Union[int, str, Sequence[Union[int, str]]]) -> Any:
        key = (id(self.doc), attrs if isinstance(attrs, (int, str)) else tuple(attrs))
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.doc.to_array(attrs if isinstance(attrs, (int, str)) else list(attrs))
        return table[self.start : self.end]


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
