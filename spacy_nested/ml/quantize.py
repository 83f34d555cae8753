"""Dynamic int8 quantization of a pipeline's transformer (and optionally the detectors' heads), kept across save and load.

``quantize_pipeline(nlp, heads=False, layers="all")`` returns a copy of ``nlp``
whose transformer runs with torch's dynamic int8 quantization
(``torch.ao.quantization.quantize_dynamic`` on ``torch.nn.Linear``: int8
weights, symmetric, a scale per output row by default (``per_channel``) or one
per matrix; activations quantized per batch as they come; CPU only). The
transformer is any spacy-transformers model in the pipeline: the
``transformer`` component, or a detector's own inline one (a detector sourced
with ``replace_listeners``, as ``combine-pipelines`` does). ``layers`` picks
its Linear layers: ``"all"``, or a regular expression searched in their module
names (``encoder.layer.5.output.dense``), e.g. ``encoder\\.layer\\.[0-4]\\.`` to
leave MiniLM's last layer in fp32. ``heads=True`` quantizes every Linear of the
detectors' torch heads too. ``python -m spacy_nested quantize MODEL OUTPUT``
(``cli/quantize.py``) saves the result; ``spacy.load(OUTPUT)`` gives the
quantized pipeline again, with no flag.

The difficulty. ``spacy.load`` builds every model from the saved config, then
loads the weights into it. A dynamically quantized Linear keeps its weight as
packed int8 parameters, so a quantized module's state dict does not fit the
fp32 module the config builds (spacy-transformers then falls back to a
non-strict load with a warning, and leaves the Linear layers random). Two ways
out: quantize each torch module after it is built and before its weights load
(the folder holds int8 weights), or save the fp32 weights and quantize after
they load. spacy-transformers builds its Hugging Face model lazily, inside the
shim's ``from_bytes``, right before ``load_state_dict``: the first way would
mean reaching into that function (or replacing the shim's ``model_cls``), and
the heads' loader (``bridge.deserialize_head``) resizes the head between the
two steps too.

Chosen: fp32 weights on disk, quantized on load. The saved config says
``[nlp.after_pipeline_creation] @callbacks = "spacy_nested.quantize_int8.v1"``
(with ``layers``, ``heads`` and ``per_channel``). spaCy calls it once the
pipeline is built and before any weight is loaded; it gives each torch shim to
quantize (the transformer's ``HFShim``, with ``heads`` the heads' shims) the
``Int8Shim`` step, as ``bridge.update_in_place`` gives its own: the shim loads
the fp32 weights as usual, then quantizes its module in place. The folder
therefore is exactly the fp32 pipeline plus that block, which:

* loads with any spacy-transformers and torch version that loads the fp32
  pipeline, relying on no int8 serialization format;
* gives the same int8 model on every load: ``quantize_dynamic`` is a
  deterministic function of the fp32 weights (``quantize_pipeline`` itself is a
  save to bytes and a load, so the in-memory copy is what ``spacy.load`` gives);
* can be quantized again with other settings (``quantize`` on a quantized
  pipeline starts again from its fp32 weights), or loaded in fp32 with
  ``spacy.load(OUTPUT, config={"nlp": {"after_pipeline_creation": None}})``.

Saving a quantized pipeline (``combine-pipelines``, ``tune-ensemble``) must
write fp32 weights too, and int8 weights cannot give them back (de-quantized
and quantized again they are not the same: the scale moves). So the shim keeps
the fp32 Linear modules that quantization replaced (the very modules the
weights were loaded into, no copy) and puts them back while it serializes. The
price: a quantized pipeline holds both the fp32 and the int8 weights of its
quantized layers (MiniLM: about 20 MB more RSS than fp32 after load, not less),
its folder is no smaller, and a load takes the quantization's time too (a
fraction of a second for MiniLM). The gain is speed. A quantized pipeline is
for prediction: its int8 layers have no gradient. Serializing swaps modules for
a moment: do not save a pipeline while another thread predicts with it.

The heads read some of their Linear layers' weights themselves (Locate and
Label's ``MLP.forward_parts``, the boundary offset grid's ``cell_linear``), so
each quantized layer is an ``Int8Linear``: torch's dynamic Linear inside, and a
``weight`` and ``bias`` that such code can still slice.

Dynamic quantization runs on the CPU only: where torch's default device is a
GPU, the load warns and keeps the fp32 module. A callback the config already
had in ``after_pipeline_creation`` is kept, as ``previous``, and runs first.
torch has deprecated ``torch.ao.quantization`` in favour of the separate
torchao package; its warnings are silenced here, where the call is.
"""
import re
import sys
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple, cast

import torch
from spacy.language import Language
from spacy.util import load_model_from_config
from thinc.api import Model, PyTorchShim

HOOK = "spacy_nested.quantize_int8.v1"
ALL = "all"
TRANSFORMER, HEAD = "transformer", "head"


def layer_pattern(layers: str) -> Optional["re.Pattern[str]"]:
    """``layers`` as a compiled regular expression (None for ``"all"``).

    RAISES (ValueError): not a regular expression.
    """
    if layers == ALL:
        return None
    try:
        return re.compile(layers)
    except re.error as err:
        raise ValueError(f"layers must be 'all' or a regular expression over module names, got {layers!r}: {err}") from None


def linear_layers(module: torch.nn.Module, layers: str = ALL) -> List[str]:
    """The names (as ``named_modules`` gives them) of the fp32 ``torch.nn.Linear`` layers of ``module``
    that ``layers`` selects: all, or those a regular expression finds in their name."""
    pattern = layer_pattern(layers)
    return [
        name
        for name, child in module.named_modules()
        if type(child) is torch.nn.Linear and name and (pattern is None or pattern.search(name))
    ]


class Int8Linear(torch.nn.Module):
    """torch's dynamically quantized Linear (``self.quantized``), which also answers ``weight`` and ``bias`` as
    fp32 tensors (de-quantized at each access) for code that reads them instead of calling the layer.

    The heads do: Locate and Label's MLPs (``layers.MLP.forward_parts``) and the boundary offset grid
    (``cell_linear``) slice the first layer's weight by input columns. torch's own module makes ``weight`` a
    method, which such code cannot slice; here it computes with the int8-rounded weights in fp32 (no speed-up
    for those layers, the same function as their module call up to the activations' rounding).
    """

    def __init__(self, quantized: "torch.ao.nn.quantized.dynamic.Linear"):
        super().__init__()
        self.quantized = quantized
        self.in_features = int(quantized.in_features)
        self.out_features = int(quantized.out_features)

    @classmethod
    def from_float(cls, module: torch.nn.Linear) -> "Int8Linear":
        """From a Linear with its ``qconfig`` set (``quantize_dynamic`` calls this)."""
        return cls(torch.ao.nn.quantized.dynamic.Linear.from_float(module))

    @property
    def weight(self) -> torch.Tensor:
        return self.quantized.weight().dequantize()

    @property
    def bias(self) -> Optional[torch.Tensor]:
        return self.quantized.bias()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantized(x)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=torch.qint8"


def quantize_linears(module: torch.nn.Module, layers: str = ALL, per_channel: bool = True) -> List[str]:
    """Quantize the selected Linear layers of ``module`` in place (dynamic int8, each an ``Int8Linear``); returns
    their names. ``per_channel``: a weight scale per output row (else one per matrix)."""
    names = linear_layers(module, layers)
    if names:
        ao = torch.ao.quantization
        qconfig = ao.per_channel_dynamic_qconfig if per_channel else ao.default_dynamic_qconfig
        with warnings.catch_warnings():  # torch deprecates torch.ao.quantization (for torchao) at every call
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated", category=UserWarning)
            torch.ao.quantization.quantize_dynamic(
                module, {name: qconfig for name in names}, dtype=torch.qint8, mapping={torch.nn.Linear: Int8Linear},
                inplace=True,
            )  # fmt: skip
    return names


def int8_linear_layers(module: torch.nn.Module) -> List[str]:
    """The names of the dynamically quantized Linear layers (``Int8Linear``) of ``module``."""
    return [name for name, child in module.named_modules() if isinstance(child, Int8Linear)]


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
                _set_submodule(self._model, name, linear)
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
                _set_submodule(module, name, linear)
            return super().to_bytes()
        finally:
            for name, quantized in int8.items():
                _set_submodule(module, name, quantized)


def _set_submodule(module: torch.nn.Module, name: str, child: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, attr, child)


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


def _hf_shim_class() -> Optional[type]:
    """spacy-transformers' ``HFShim``, if imported: a pipeline with a transformer has imported it (its factory), and
    spacy_transformers takes seconds to import, so a pipeline without one does not pay for it here."""
    module = sys.modules.get("spacy_transformers.layers.hf_shim")
    return getattr(module, "HFShim", None)


def torch_targets(nlp: Language, heads: bool) -> Iterator[Tuple[str, str, PyTorchShim]]:
    """(component, TRANSFORMER or HEAD, shim) for each transformer shim of the pipeline (disabled components too)
    and, with ``heads``, each detector head's shim; a shim shared by several components comes once."""
    hf_shim = _hf_shim_class()
    seen: Set[int] = set()
    for name, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        found: List[Tuple[str, Any]] = []
        if hf_shim is not None:
            found += [(TRANSFORMER, shim) for node in model.walk() for shim in node.shims if isinstance(shim, hf_shim)]
        if heads and model.has_ref("head"):
            found += [(HEAD, shim) for shim in model.get_ref("head").shims if isinstance(shim, PyTorchShim)]
        for kind, shim in found:
            if id(shim) not in seen:
                seen.add(id(shim))
                yield name, kind, shim


def quantize_int8(
    layers: str = ALL,
    heads: bool = False,
    per_channel: bool = True,
    previous: Optional[Callable[[Language], Language]] = None,
) -> Callable[[Language], Language]:
    """The ``[nlp.after_pipeline_creation]`` callback of a quantized pipeline (``spacy_nested.quantize_int8.v1``):
    its transformers' shims (and with ``heads`` its detectors' heads') quantize their modules once their fp32
    weights are loaded, the transformers' Linear layers that ``layers`` selects, all the heads'.

    per_channel: int8 weights with a scale per output row (else one per matrix).

    previous: the callback the pipeline's config had there before, run first.
    RAISES (ValueError): ``layers`` is not a regular expression.
    """
    layer_pattern(layers)

    def after_pipeline_creation(nlp: Language) -> Language:
        if previous is not None:
            nlp = previous(nlp)
        for _, kind, shim in torch_targets(nlp, heads):
            mark_int8(shim, layers if kind == TRANSFORMER else ALL, per_channel)
        return nlp

    return after_pipeline_creation


def _module(shim: PyTorchShim) -> Optional[torch.nn.Module]:
    return shim._model


def quantize_pipeline(nlp: Language, heads: bool = False, layers: str = ALL, per_channel: bool = True) -> Language:
    """A copy of ``nlp`` whose transformers' Linear layers that ``layers`` selects (``"all"`` or a regular expression
    searched in their module names) and, with ``heads``, its detectors' heads' Linear layers run in dynamic int8
    (weights with a scale per output row, or with ``per_channel`` off one per matrix), and whose config says so:
    saved, it loads quantized (module docstring). ``nlp`` is left as it is.

    RAISES (ValueError): nothing to quantize (no transformer, and ``heads`` off or no detector), an uninitialized
        transformer, ``layers`` not a regular expression or selecting no Linear layer of the transformer.
    """
    layer_pattern(layers)
    targets = list(torch_targets(nlp, heads))
    transformers = [(name, shim) for name, kind, shim in targets if kind == TRANSFORMER]
    if not transformers and not (heads and targets):
        detail = "and no detector head" if heads else "and --heads is off (the detectors' heads are not quantized)"
        raise ValueError(
            f"nothing to quantize: the pipeline ({nlp.component_names}) has no transformer (a spacy-transformers "
            f"'transformer' component or a detector's own) {detail}"
        )
    modules = [(name, _module(shim)) for name, shim in transformers]
    missing = [name for name, module in modules if module is None]
    if missing:
        raise ValueError(f"the transformer of {missing} is not initialized: train or initialize the pipeline first")
    if transformers and not any(linear_layers(module, layers) for _, module in modules if module is not None):
        examples = [n for _, m in modules if m is not None for n in linear_layers(m)][:3]
        raise ValueError(f"layers {layers!r} selects no Linear layer of the transformer (their names: {examples}, ...)")
    config = nlp.config.copy()
    before = config["nlp"].get("after_pipeline_creation")
    if isinstance(before, dict) and before.get("@callbacks") == HOOK:  # quantized already: start again from fp32
        before = before.get("previous")
    hook: Dict[str, Any] = {"@callbacks": HOOK, "layers": layers, "heads": heads, "per_channel": per_channel}
    if before is not None:
        hook["previous"] = before
    config["nlp"]["after_pipeline_creation"] = hook
    quantized = load_model_from_config(config, meta=nlp.meta)
    return quantized.from_bytes(nlp.to_bytes(), exclude=["config"])  # keep the config with the hook


def int8_layers(nlp: Language) -> Dict[str, Dict[str, int]]:
    """For each component with int8 layers, how many dynamically quantized Linear layers its transformer and its
    head hold (keys TRANSFORMER, HEAD)."""
    out: Dict[str, Dict[str, int]] = {}
    for name, kind, shim in torch_targets(nlp, heads=True):
        module = _module(shim)
        count = len(int8_linear_layers(module)) if module is not None else 0
        if count:
            out.setdefault(name, {})[kind] = out.get(name, {}).get(kind, 0) + count
    return out
