"""The head settings of a factory's default config: heads take no defaults of their own."""
from typing import Any, Dict

from thinc.api import Config

from spacy_nested.detectors.boundary_offset import component as boundary_offset
from spacy_nested.detectors.locate_label import component as locate_label
from spacy_nested.detectors.proposer_regressor import component as proposer_regressor

DEFAULT_CONFIGS = {
    "locate_label": locate_label.DEFAULT_CONFIG,
    "boundary_offset": boundary_offset.DEFAULT_CONFIG,
    "proposer_regressor": proposer_regressor.DEFAULT_CONFIG,
}
NOT_HEAD = ("tok2vec", "mixed_precision", "learn_rate_scale")  # the architecture's own arguments


def head_args(detector: str, **changes: Any) -> Dict[str, Any]:
    """Keyword arguments of the detector's torch head: the factory defaults with `changes`."""
    model = Config().from_str(DEFAULT_CONFIGS[detector])["model"]
    args = {k: v for k, v in model.items() if not k.startswith("@") and k not in NOT_HEAD}
    return {**args, **changes}
