"""Dynamic int8 quantization of torch Linear layers, torch only (``ml/quantize.py`` applies it to a pipeline).

``quantize_linears`` replaces the chosen ``torch.nn.Linear`` layers of a module, in place, by
``Int8Linear``: torch's dynamic int8 Linear inside, and a ``weight`` and ``bias`` that code
reading a layer's weights itself (Locate and Label's ``MLP.forward_parts``, the boundary
offset grid's ``cell_linear``) can still slice.
"""
import re
import warnings
from typing import List, Optional

import torch

ALL = "all"


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


def set_submodule(module: torch.nn.Module, name: str, child: torch.nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, attr, child)
