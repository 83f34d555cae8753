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
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import torch
from spacy.language import Language
from spacy.util import load_model_from_config
from thinc.api import Model, PyTorchShim

from spacy_nested.ml.bridge import mark_int8
from spacy_nested.ml.int8 import ALL, int8_linear_layers, layer_pattern, linear_layers

HOOK = "spacy_nested.quantize_int8.v1"
TRANSFORMER, HEAD = "transformer", "head"




















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
