"""The one door between thinc and the torch heads: the only module that touches a shim.

``wrap_head(head)`` wraps a torch ``nn.Module`` in thinc's ``PyTorchWrapper_v3``.
The wrapper's input is ``(vectors, segments, extras)``: the encoder's per-doc
arrays, the ``(doc, start, end)`` token ranges the head processes as rows of
one padded batch (sentences or bounded windows, see ``spans.segment_docs``),
and a tuple of integer numpy arrays (candidate spans and the like) handed to
the head as long tensors. Its output is the head's tuple of tensors as xp
arrays. The backward pass accepts one gradient per output (``None`` for
outputs that get none), pushes it through torch, and scatters the gradient of
the padded segments back into the per-doc arrays of the encoder, so the
shared tok2vec or transformer learns from the head.

Heads must implement ``resize(n_inputs: int, n_labels: int) -> self`` and
``dims() -> dict``: the wrapper is built eagerly with placeholder sizes, the
sizes are set at initialization (``resize_head``) and stored next to the
``state_dict``, so ``spacy.load``/``from_bytes`` rebuild the right shapes
before loading the weights (the torch module itself is never pickled). Weights
saved from any device are mapped to the current one on load.
"""
import ctypes
import os
import sys
import warnings
from io import BytesIO
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

import srsly
import torch
from thinc.api import ArgsKwargs, Model, Optimizer, PyTorchShim, PyTorchWrapper_v3, torch2xp, xp2torch
from thinc.types import Floats2d, FloatsXd

from spacy_nested.ml.int8 import ALL, linear_layers, quantize_linears, set_submodule
from spacy_nested.spans import Segment

# torch's OpenMP thread pool is not fork-safe: a worker forked by nlp.pipe(n_process=N) that
# inherits it deadlocks on its first forward pass. So the head runs torch on one thread in a
# forked child: set at the head's first forward pass there (``_one_thread_if_forked``), which
# changes nothing in the process that imported the package, nor in a child that never runs a head.
_PARENT_PID = os.getpid()
_threads_set_in: Optional[int] = None


def _one_thread_if_forked() -> None:
    global _threads_set_in
    pid = os.getpid()
    if pid != _PARENT_PID and _threads_set_in != pid:
        torch.set_num_threads(1)
        _threads_set_in = pid


# Flat training memory: what a long training needs so that its RSS does not creep up with the
# updates, switched on where training starts by the ``spacy_nested.flat_training_memory.v1``
# callback (``[initialize.before_init]`` of the project's configs), never by an import.
#
# 1. oneDNN's kernel cache. On the CPU torch runs some ops through oneDNN (GELU, 1D and 3D
#    convolutions, layout reorders), which compiles a kernel for each new tensor shape and
#    caches up to 1,024 of them. The heads' shapes change with every batch (candidate counts,
#    segment lengths, grids), so every update added long-lived kernels in between its own large
#    freed buffers: glibc's heap could not merge those, fragmented and grew by MBs per update
#    while the memory in use stayed flat. Without the cache each kernel is compiled per call and
#    freed with it. Measured on one CPU thread, no slower: a boundary_offset update took 1.84 CPU
#    s against 2.04 with the cache. Scores may move in the fifth decimal (other kernels). oneDNN
#    reads ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` when it builds its first kernel, so the callback
#    runs before initialization; a value the user set wins. It holds for the whole process.
# 2. The heap's free pages. A head whose batches change shape a lot (proposer_regressor:
#    proposals per sentence, N x N grids) leaves big freed blocks in glibc's heap after an
#    unusually large batch, which glibc keeps rather than giving back: its RSS stepped up by
#    260 MB between updates 300 and 400. Every ``TRIM_EVERY`` optimizer steps of the heads
#    (0: never, the default outside training) the free pages go back (``malloc_trim(0)``, about
#    0.5 ms, 100 ms after 1 GB of scattered frees). Measured on the same batches,
#    proposer_regressor's RSS over updates 200-600: 887-912 MB, against 1,403-1,685 MB without.
# 3. The optimizer step of other components' torch shims (the transformer's): thinc's leaves a
#    chain of objects behind every update (see ``InPlaceUpdateShim``); the callback gives the
#    components it names the in-place step. The heads' own shims always have it.
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
TRIM_EVERY = 0


def flat_training_memory(
    onednn_kernel_cache: Optional[int] = 0, trim_every: int = 50, in_place_updates: Union[bool, List[str]] = True
) -> Callable[[Any], Any]:
    """The ``[initialize.before_init]`` callback that keeps a training's memory flat (above).

    onednn_kernel_cache: ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` for the process (null: oneDNN's
        default), unless the environment already sets it.
    trim_every: give glibc's free heap pages back every this many head updates (0: never).
    in_place_updates: the pipeline components (true: all, false: none) whose torch shims get
        the in-place optimizer step.
    """
    if trim_every < 0:
        raise ValueError(f"trim_every must be >= 0, got {trim_every}")

    def before_init(nlp: Any) -> Any:
        global TRIM_EVERY
        user_set = ONEDNN_CACHE in os.environ or "DNNL_PRIMITIVE_CACHE_CAPACITY" in os.environ
        if onednn_kernel_cache is not None and not user_set:
            os.environ[ONEDNN_CACHE] = str(int(onednn_kernel_cache))
        TRIM_EVERY = int(trim_every)
        for name, pipe in nlp.pipeline:
            named = in_place_updates is True or (isinstance(in_place_updates, list) and name in in_place_updates)
            model = getattr(pipe, "model", None)
            if named and isinstance(model, Model):
                update_in_place(model)
        return nlp

    return before_init


def _find_malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim`` (None elsewhere: macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return cast(Callable[[int], int], ctypes.CDLL(None).malloc_trim)
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()
_steps = 0


def give_heap_back() -> None:
    """glibc's ``malloc_trim(0)``: the heap's free pages back to the system (nothing elsewhere)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def trim_heap_every_few_steps() -> None:
    """Count one optimizer step; give the heap's free pages back every ``TRIM_EVERY`` steps."""
    global _steps
    _steps += 1
    if TRIM_EVERY > 0 and _steps % TRIM_EVERY == 0:
        give_heap_back()


Extras = Tuple[Any, ...]
HeadInput = Tuple[List[Floats2d], List[Segment], Extras]


def wrap_head(
    head: torch.nn.Module, *, mixed_precision: bool, learn_rate_scale: float
) -> Model[HeadInput, Tuple[Any, ...]]:
    """The torch head as a thinc layer over padded segments, stepped at ``learn_rate_scale``
    times the optimizer's learning rate (thinc's ``lr_scale``)."""
    if not learn_rate_scale > 0:
        raise ValueError(f"learn_rate_scale must be > 0, got {learn_rate_scale}")
    wrapper = PyTorchWrapper_v3(
        head,
        convert_inputs=convert_segment_inputs,
        convert_outputs=convert_tuple_outputs,
        mixed_precision=mixed_precision,
        serialize_model=serialize_head,
        deserialize_model=deserialize_head,
    )
    update_in_place(wrapper)  # thinc's shim becomes an InPlaceUpdateShim: no leak per update (below)
    cast(InPlaceUpdateShim, wrapper.shims[0]).learn_rate_scale = float(learn_rate_scale)
    return wrapper


class InPlaceUpdateShim(PyTorchShim):
    """thinc's ``PyTorchShim`` with an optimizer step that writes into the parameters in place.

    thinc's ``finish_update`` sets ``param.data = xp2torch(new)``, where ``new``
    is the numpy (or cupy) view of the old tensor that the optimizer updated in
    place: every update adds a link tensor -> DLPack capsule -> array -> old
    tensor per parameter, never freed (about 0.5 KB per parameter and update:
    13 parameters for locate_label, 34 for boundary_offset, 181 for
    proposer_regressor). The links are small, but they are allocated between
    the update's large freed buffers and keep glibc's heap from merging them:
    with oneDNN's kernel cache (see the top of this module) the second cause of
    a detector's RSS growing by 0.8-5 MB per update. Here a
    parameter keeps its storage; the step is copied into it only when the
    optimizer returned other memory.
    """

    learn_rate_scale = 1.0  # set by wrap_head

    def finish_update(self, optimizer: Optimizer) -> None:
        for name, param in self._model.named_parameters():
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:  # as thinc: no step when a gradient overflowed
                weights, grad = cast(FloatsXd, torch2xp(param.data)), cast(FloatsXd, torch2xp(param.grad))
                new, _ = optimizer((self.id, name), weights, grad, lr_scale=self.learn_rate_scale)
                stepped = xp2torch(new, device=param.device)
                if stepped.data_ptr() != param.data_ptr():
                    param.data.copy_(stepped)
            param.grad.zero_()
        self._grad_scaler.update()
        trim_heap_every_few_steps()


# a torch shim class -> the class with the in-place step (for thinc's own, InPlaceUpdateShim itself)
_IN_PLACE: Dict[type, type] = {PyTorchShim: InPlaceUpdateShim}


def update_in_place(model: Model) -> int:
    """Give every torch shim under ``model`` that does not have it yet the in-place optimizer step
    of ``InPlaceUpdateShim``, a transformer's (spacy-transformers' ``HFShim``) included; returns
    how many changed. The transformer's shim is thinc's ``finish_update`` too, so a fine-tuned
    MiniLM left the same chain behind every update (its heap in use grew by about 0.09 MB per
    update of boundary_offset_minilm). ``flat_training_memory`` calls this on the components a
    training config names."""
    changed = 0
    for node in model.walk():
        for shim in node.shims:
            if isinstance(shim, PyTorchShim) and not isinstance(shim, InPlaceUpdateShim):
                cls = type(shim)
                if cls not in _IN_PLACE:
                    _IN_PLACE[cls] = type(f"InPlace{cls.__name__}", (InPlaceUpdateShim, cls), {})
                shim.__class__ = _IN_PLACE[cls]
                changed += 1
    return changed


def get_torch_head(model: Model) -> torch.nn.Module:
    """The torch module of a detector model (its ``head`` ref) or of the wrapper itself."""
    wrapper = model.get_ref("head") if model.has_ref("head") else model
    return wrapper.shims[0]._model


def resize_head(wrapper: Model, n_inputs: int, n_labels: int) -> None:
    """Rebuild the wrapped head's layers for an encoder width and a label count, on the shim's device."""
    shim = wrapper.shims[0]
    shim._model = shim._model.resize(n_inputs, n_labels).to(_device(wrapper))


def _device(wrapper: Model) -> torch.device:
    return wrapper.shims[0].device  # type: ignore[attr-defined]  # a PyTorchShim's


def convert_segment_inputs(model: Model, X: Tuple[List[Floats2d], List[Segment], Extras], is_train: bool):
    """Pad the segments of the doc arrays into (S, N, d); scatter gradients back."""
    _one_thread_if_forked()
    vectors, segments, extras = X
    ops = model.ops
    device = _device(model)
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
        d_rows: Any = torch2xp(d_padded)
        for row, (d, s, e) in enumerate(segments):
            d_vectors[d][s:e] += d_rows[row, : e - s]
        return d_vectors

    return ArgsKwargs(args=(Xt, lengths, *extras_t), kwargs={}), backprop


def convert_tuple_outputs(model: Model, inputs_outputs: Tuple[Any, Tuple[torch.Tensor, ...]], is_train: bool):
    """Torch tuple -> xp tuple (floats as float32); gradients back for float outputs."""
    _, outputs = inputs_outputs
    outputs = tuple(outputs)
    device = _device(model)
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


def serialize_head(module: Any) -> bytes:
    """Save the head's sizes (``module.dims()``) next to its weights."""
    buffer = BytesIO()
    torch.save(module.state_dict(), buffer)
    return srsly.msgpack_dumps({"dims": module.dims(), "state": buffer.getvalue()})


def deserialize_head(module: Any, data: bytes, device: "torch.device") -> torch.nn.Module:
    """Resize to the saved sizes, then load the weights onto ``device``."""
    msg = srsly.msgpack_loads(data)
    module.resize(**msg["dims"])
    state = torch.load(BytesIO(msg["state"]), map_location=device, weights_only=True)
    module.load_state_dict(state)
    return module.to(device)


class Int8Shim(PyTorchShim):
    """The step given to a torch shim to quantize: fp32 weights load as usual, then the module is quantized.

    It keeps the fp32 Linear modules that quantization replaced (the very modules the weights were loaded
    into: no copy), and ``to_bytes`` puts them back for as long as the shim serializes, so that a quantized
    pipeline saves its fp32 weights (module docstring). A shim that has loaded nothing (a transformer
    initialized in this process) saves as before.
    """

    int8_layers: str = ALL  # set by mark_int8
    int8_per_channel: bool = True
    _fp32_linears: Optional[Dict[str, torch.nn.Module]] = None

    def from_bytes(self, bytes_data: bytes) -> Any:
        if self._fp32_linears and self._model is not None:  # loaded before: the loader gets its fp32 module back
            for name, linear in self._fp32_linears.items():
                set_submodule(self._model, name, linear)
        self._fp32_linears = None
        super().from_bytes(bytes_data)
        module = self._model
        if module is None:  # a transformer saved uninitialized
            return self
        device = next(iter(module.parameters()), torch.empty(0)).device
        if device.type != "cpu":
            warnings.warn(f"spacy_nested: dynamic int8 quantization runs on the CPU only; the module on {device} stays fp32")
            return self
        fp32 = {name: module.get_submodule(name) for name in linear_layers(module, self.int8_layers)}
        quantize_linears(module, self.int8_layers, self.int8_per_channel)
        self._fp32_linears = fp32
        return self

    def to_bytes(self) -> bytes:
        fp32, module = self._fp32_linears, self._model
        if not fp32 or module is None:
            return super().to_bytes()
        int8 = {name: module.get_submodule(name) for name in fp32}
        try:
            for name, linear in fp32.items():
                set_submodule(module, name, linear)
            return super().to_bytes()
        finally:
            for name, quantized in int8.items():
                set_submodule(module, name, quantized)


# a torch shim class -> the class with the int8 step (for Int8Shim's subclasses themselves)
_INT8: Dict[type, type] = {}


def mark_int8(shim: PyTorchShim, layers: str, per_channel: bool) -> None:
    """Give ``shim`` the int8 step of ``Int8Shim`` (its class becomes a subclass of both), quantizing ``layers``."""
    if not isinstance(shim, Int8Shim):
        cls = type(shim)
        if cls not in _INT8:
            _INT8[cls] = type(f"Int8{cls.__name__}", (Int8Shim, cls), {})
        shim.__class__ = _INT8[cls]
    cast(Int8Shim, shim).int8_layers = layers
    cast(Int8Shim, shim).int8_per_channel = per_channel
