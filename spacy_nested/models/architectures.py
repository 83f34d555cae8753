"""Registered thinc architectures of the detectors.

Each one is ``chain(tok2vec, torch head)`` built by ``bridge.build_span_detector``;
``tok2vec`` is any ``Model[List[Doc], List[Floats2d]]``: a ``spacy.Tok2VecListener.v1``
behind a shared ``tok2vec``, a ``spacy-transformers.TransformerListener.v1``
behind a shared ``transformer``, or an inline ``spacy.Tok2Vec.v2``.
"""
from typing import Any, Dict, List, Sequence

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..heads.boundary_offset import BoundaryOffsetHead
from ..heads.locate_label import LocateLabelHead
from ..heads.proposer_regressor import ProposerRegressorHead
from .bridge import build_span_detector


@registry.architectures("spacy_nested.LocateLabel.v1")
def build_locate_label_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 256,
    lstm_hidden: int = 0,
    dropout: float = 0.1,
    use_filter: bool = True,
    use_regressor: bool = True,
    filter_threshold: float = 0.1667,
    mixed_precision: bool = False,
) -> Model:
    """Locate and Label (Shen et al. 2021): filter, boundary regressor, classifier.

    ``lstm_hidden`` > 0 adds the paper's BiLSTM over the encoder output.
    ``use_filter``/``use_regressor`` switch components off for the Table 3
    ablation. ``dropout`` applies inside the torch head (spaCy's
    ``[training] dropout`` reaches only thinc layers).
    """
    head = LocateLabelHead(**_head_settings(locals()))
    return build_span_detector(tok2vec, head, mixed_precision=mixed_precision)


@registry.architectures("spacy_nested.BoundaryOffset.v1")
def build_boundary_offset_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    max_offset: int = 2,
    lstm_hidden: int = 128,
    lstm_dropout: float = 0.5,
    type_input: bool = True,
    biaffine_hidden: int = 150,
    biaffine_dropout: float = 0.33,
    region_width: int = 20,
    distance_width: int = 20,
    cln_fusion: bool = True,
    conv_dilations: Sequence[int] = (1, 2),
    conv_stacked: bool = True,
    conv_residual: bool = True,
    conv_dropout: float = 0.2,
    max_cells: int = 20000,
    mixed_precision: bool = False,
) -> Model:
    """Boundary Offset Prediction Network (Tang et al. 2023), switches for Table 4.

    ``max_offset`` S (0 = "w/o BO"); ``type_input`` (off = "w/o Type Inp.");
    ``region_width`` 0 drops the region embedding; ``distance_width`` and
    ``cln_fusion`` are the authors' code-only extras; ``conv_dilations`` one
    entry per 3D conv layer (``[]`` = "w/o 3DConv"), stacked or parallel, added
    to or replacing the scores. ``max_cells`` bounds the padded cells of one
    length group (speed/memory only; results do not depend on it).
    """
    head = BoundaryOffsetHead(**_head_settings(locals()))
    return build_span_detector(tok2vec, head, mixed_precision=mixed_precision)


@registry.architectures("spacy_nested.ProposerRegressor.v1")
def build_proposer_regressor_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 256,
    encoder_gru: bool = True,
    kernels: Sequence[int] = (2, 3),
    backward: bool = True,
    pool: str = "avg",
    query: str = "bottom",
    n_layers: int = 3,
    n_heads: int = 8,
    spatial: bool = True,
    gate: str = "gru",
    ffn_width: int = 1024,
    category_embedding: bool = True,
    location_iteration: bool = True,
    logits_iteration: bool = True,
    dropout: float = 0.1,
    max_width: int = 16,
    mixed_precision: bool = False,
) -> Model:
    """Proposer and regressor (Wen et al. 2023), switches for Table 6.

    ``encoder_gru`` the BiGRU of eq. 4; ``kernels`` the pyramid's Conv1D kernels
    (``[]`` = no pyramid); ``backward`` the backward blocks, ``pool`` their
    residual ("avg" paper, "max" code); ``query`` "bottom" (paper) or "fused"
    (code); ``n_layers`` regressor iterations; ``spatial`` the spatial prior;
    ``gate`` "gru" (eqs. 18–19) or "ffn" (code); ``category_embedding``,
    ``location_iteration``, ``logits_iteration`` eqs. 11, 16, 20;
    ``max_width`` bounds the pointer (spans of at most this many tokens near
    each proposal).
    """
    head = ProposerRegressorHead(**_head_settings(locals()))
    return build_span_detector(tok2vec, head, mixed_precision=mixed_precision)


def _head_settings(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """An architecture's arguments minus the encoder and the wrapper's own: the head's settings."""
    return {k: v for k, v in arguments.items() if k not in ("tok2vec", "mixed_precision")}
