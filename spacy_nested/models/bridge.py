"""The one door between spaCy/thinc and the torch heads.

``build_span_detector(tok2vec, head)`` chains any ``Model[List[Doc], List[Floats2d]]``
(``spacy.Tok2VecListener.v1``, ``spacy-transformers.TransformerListener.v1``,
an inline ``spacy.Tok2Vec.v2``) with a torch ``nn.Module`` wrapped by thinc's
``PyTorchWrapper_v3``.

Model input: ``(docs, segments, extras)``. ``segments`` lists the
``(doc, start, end)`` token ranges the head processes as rows of one padded
batch (sentences or bounded windows, see ``spans.segment_docs``); ``extras``
is a tuple of integer numpy arrays (candidate spans and the like) handed to the
head as long tensors. Model output: the head's tuple of tensors as xp arrays.
The backward pass accepts one gradient per output (``None`` for outputs that
get none), pushes it through torch, and scatters the gradient of the padded
segments back into the per-doc arrays of the encoder, so the shared tok2vec
or transformer learns from the head.

Heads must implement ``resize(n_inputs: int, n_labels: int) -> self`` and
``dims() -> dict``: the wrapper is built eagerly with placeholder sizes, the
sizes are set in ``init`` and stored next to the ``state_dict``, so
``spacy.load``/``from_bytes`` rebuild the right shapes before loading weights
(SPACY_INTEGRATION.md §2.5, option A). Weights saved from any device are
mapped to the current one on load.
"""
import os
from io import BytesIO
from typing import Any, List, Optional, Sequence, Tuple

import srsly
import torch
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v3, torch2xp, xp2torch
from thinc.types import Floats2d
from spacy.tokens import Doc

from ..spans import Segment

# torch's OpenMP thread pool is not fork-safe: a worker forked by
# nlp.pipe(n_process=N) that inherits it deadlocks on its first forward pass.
# Forked children therefore run torch on one thread each.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

Extras = Tuple[Any, ...]
DetectorInput = Tuple[List[Doc], List[Segment], Extras]


def build_span_detector(
    tok2vec: Model[List[Doc], List[Floats2d]],
    head: torch.nn.Module,
    *,
    mixed_precision: bool = False,
) -> Model[DetectorInput, Tuple[Any, ...]]:
    """chain(tok2vec, torch head) with segment padding between them."""
    wrapper = PyTorchWrapper_v3(
        head,
        convert_inputs=convert_segment_inputs,
        convert_outputs=convert_tuple_outputs,
        mixed_precision=mixed_precision,
        serialize_model=serialize_head,
        deserialize_model=deserialize_head,
    )
    return Model(
        "span_detector",
        _forward,
        init=_init,
        layers=[tok2vec, wrapper],
        refs={"tok2vec": tok2vec, "head": wrapper},
        dims={"nI": None, "nO": None},
    )


def get_torch_head(model: Model) -> torch.nn.Module:
    """The torch module inside a model built by ``build_span_detector``."""
    return model.get_ref("head").shims[0]._model


def _forward(model: Model, inputs: DetectorInput, is_train: bool):
    docs, segments, extras = inputs
    vectors, backprop_tok2vec = model.get_ref("tok2vec")(docs, is_train)
    outputs, backprop_head = model.get_ref("head")((vectors, segments, extras), is_train)

    def backprop(d_outputs: Sequence[Any]) -> Any:
        return backprop_tok2vec(backprop_head(d_outputs))

    return outputs, backprop


def _init(model: Model, X: Optional[DetectorInput] = None, Y: Optional[Sequence[str]] = None) -> None:
    """Initialize the encoder, then size the head: ``Y`` is the label list."""
    if Y is None:
        raise ValueError("Initialize a span detector with Y = its list of labels.")
    tok2vec = model.get_ref("tok2vec")
    docs = X[0] if X is not None else None
    tok2vec.initialize(X=docs)
    n_in = _output_width(tok2vec, docs)
    model.set_dim("nI", n_in, force=True)
    model.set_dim("nO", len(Y), force=True)
    head = model.get_ref("head")
    head.shims[0]._model = get_torch_head(model).resize(n_in, len(Y)).to(head.shims[0].device)


def _output_width(tok2vec: Model, docs: Optional[List[Doc]]) -> int:
    for node in [tok2vec, *tok2vec.walk()]:
        if node.has_dim("nO") and node.get_dim("nO"):
            return int(node.get_dim("nO"))
    if docs:
        return int(tok2vec.predict(docs[:1])[0].shape[1])
    raise ValueError("Cannot infer the encoder width: give the listener a width or initialize with examples.")


def convert_segment_inputs(model: Model, X: Tuple[List[Floats2d], List[Segment], Extras], is_train: bool):
    """Pad the segments of the doc arrays into (S, N, d); scatter gradients back."""
    vectors, segments, extras = X
    ops = model.ops
    device = model.shims[0].device
    width = vectors[0].shape[1] if vectors else 0
    pieces = [vectors[d][s:e] for d, s, e in segments]
    padded = ops.pad(pieces) if pieces else ops.alloc3f(0, 0, width)
    Xt = xp2torch(padded, requires_grad=is_train, device=device)
    lengths = torch.tensor([e - s for _, s, e in segments], dtype=torch.long, device=device)
    extras_t = tuple(xp2torch(ops.xp.asarray(x), device=device).long() for x in extras)

    def backprop(d_inputs: ArgsKwargs) -> List[Floats2d]:
        d_vectors = [ops.alloc2f(*v.shape) for v in vectors]
        d_padded = d_inputs.args[0]
        if d_padded is None:
            return d_vectors
        d_padded = torch2xp(d_padded)
        for row, (d, s, e) in enumerate(segments):
            d_vectors[d][s:e] += d_padded[row, : e - s]
        return d_vectors

    return ArgsKwargs(args=(Xt, lengths, *extras_t), kwargs={}), backprop


def convert_tuple_outputs(model: Model, inputs_outputs: Tuple[Any, Tuple[torch.Tensor, ...]], is_train: bool):
    """Torch tuple -> xp tuple (floats as float32); gradients back for float outputs."""
    _, outputs = inputs_outputs
    outputs = tuple(outputs)
    device = model.shims[0].device
    converted = tuple(torch2xp(t.detach().float() if t.is_floating_point() else t.detach()) for t in outputs)

    def backprop(d_outputs: Sequence[Any]) -> ArgsKwargs:
        tensors, grads = [], []
        for tensor, grad in zip(outputs, d_outputs):
            if grad is None or not tensor.requires_grad:
                continue
            tensors.append(tensor)
            grads.append(xp2torch(grad, device=device).to(tensor.dtype))
        return ArgsKwargs(args=(tuple(tensors),), kwargs={"grad_tensors": tuple(grads)})

    return converted, backprop


def serialize_head(module: torch.nn.Module) -> bytes:
    """Save the head's sizes next to its weights."""
    buffer = BytesIO()
    torch.save(module.state_dict(), buffer)
    return srsly.msgpack_dumps({"dims": module.dims(), "state": buffer.getvalue()})


def deserialize_head(module: torch.nn.Module, data: bytes, device: "torch.device") -> torch.nn.Module:
    """Resize to the saved sizes, then load the weights onto ``device``."""
    msg = srsly.msgpack_loads(data)
    module.resize(**msg["dims"])
    state = torch.load(BytesIO(msg["state"]), map_location=device, weights_only=True)
    module.load_state_dict(state)
    return module.to(device)
