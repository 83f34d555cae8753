"""The thinc architectures of the detectors (registered in ``registrations.py``).

Each one is ``chain(tok2vec, torch head)`` built by ``detector.build_span_detector``;
``tok2vec`` is any ``Model[List[Doc], List[Floats2d]]``: a ``spacy.Tok2VecListener.v1``
behind a shared ``tok2vec``, a ``spacy-transformers.TransformerListener.v1``
behind a shared ``transformer``, or an inline ``spacy.Tok2Vec.v2``. Every setting is
a required keyword argument: the defaults live once, in each factory's default config.
The head settings the component reads go to ``model.attrs``.
"""
from typing import Any, Dict, List, Sequence

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

from ..heads.boundary_offset import BoundaryOffsetHead
from ..heads.locate_label import LocateLabelHead
from ..heads.proposer_regressor import ProposerRegressorHead
from .detector import build_span_detector


def build_locate_label_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    *,
    hidden_width: int,
    lstm_hidden: int,
    dropout: float,
    use_filter: bool,
    use_regressor: bool,
    filter_threshold: float,
    mixed_precision: bool,
) -> Model:
    """Locate and Label (Shen et al. 2021): filter, boundary regressor, classifier.

    ``lstm_hidden`` > 0 adds the paper's BiLSTM over the encoder output.
    ``use_filter``/``use_regressor`` switch components off for the Table 3
    ablation. ``dropout`` applies inside the torch head (spaCy's
    ``[training] dropout`` reaches only thinc layers).
    """
    head = LocateLabelHead(**_head_settings(locals()))
    attrs = {"use_filter": use_filter, "use_regressor": use_regressor}
    return build_span_detector(tok2vec, head, attrs=attrs, mixed_precision=mixed_precision)


def build_boundary_offset_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    *,
    max_offset: int,
    lstm_hidden: int,
    lstm_dropout: float,
    type_input: bool,
    biaffine_hidden: int,
    biaffine_dropout: float,
    region_width: int,
    distance_width: int,
    cln_fusion: bool,
    conv_dilations: Sequence[int],
    conv_stacked: bool,
    conv_residual: bool,
    conv_dropout: float,
    max_cells: int,
    mixed_precision: bool,
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
    return build_span_detector(tok2vec, head, attrs={"max_offset": max_offset}, mixed_precision=mixed_precision)


def build_proposer_regressor_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    *,
    hidden_width: int,
    encoder_gru: bool,
    kernels: Sequence[int],
    backward: bool,
    pool: str,
    query: str,
    n_layers: int,
    n_heads: int,
    spatial: bool,
    gate: str,
    ffn_width: int,
    category_embedding: bool,
    location_iteration: bool,
    logits_iteration: bool,
    dropout: float,
    max_width: int,
    mixed_precision: bool,
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
    return build_span_detector(tok2vec, head, attrs={"max_width": max_width}, mixed_precision=mixed_precision)


def _head_settings(arguments: Dict[str, Any]) -> Dict[str, Any]:
    """An architecture's arguments minus the encoder and the wrapper's own: the head's settings."""
    return {k: v for k, v in arguments.items() if k not in ("tok2vec", "mixed_precision")}
