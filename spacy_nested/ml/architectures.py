"""The thinc architectures of the detectors (registered in ``registrations.py``).

Each one is ``chain(tok2vec, torch head)`` built by ``detector.build_span_detector``;
``tok2vec`` is any ``Model[List[Doc], List[Floats2d]]``: a ``spacy.Tok2VecListener.v1``
behind a shared ``tok2vec``, a ``spacy-transformers.TransformerListener.v1``
behind a shared ``transformer``, or an inline ``spacy.Tok2Vec.v2``.

An architecture's arguments are the encoder, ``mixed_precision``, ``learn_rate_scale``
(the head's learning rate as a multiple of the optimizer's, which the encoder gets: BOPN's
authors train BERT at 5e-6 and everything else at 1e-3) and the head's own settings, which
are read off the head's ``__init__`` (``head_architecture``): each head setting is written
once as a parameter, with its type, and its default once, in the factory's default config.
The head settings the component needs (to build targets and decode) are copied to
``model.attrs``.
"""
import inspect
from typing import Any, Callable, List, Sequence

import torch
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d

from spacy_nested.detectors.boundary_offset.head import BoundaryOffsetHead
from spacy_nested.detectors.locate_label.head import LocateLabelHead
from spacy_nested.detectors.proposer_regressor.head import ProposerRegressorHead
from spacy_nested.ml.detector import build_span_detector
from spacy_nested.ml.signature import with_signature

HEAD_SIZES = ("n_inputs", "n_labels")  # set at initialization, not settings


def head_architecture(
    head_class: Callable[..., torch.nn.Module], name: str, *, attrs: Sequence[str], doc: str
) -> Callable[..., Model]:
    """An architecture ``name(tok2vec, *, <the head's settings>, mixed_precision, learn_rate_scale)``."""
    settings = [
        p
        for p in inspect.signature(head_class).parameters.values()
        if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in HEAD_SIZES
    ]

    def build(
        tok2vec: Model[List[Doc], List[Floats2d]], *, mixed_precision: bool, learn_rate_scale: float, **head_settings: Any
    ) -> Model:
        head = head_class(**head_settings)
        model_attrs = {key: head_settings[key] for key in attrs}
        return build_span_detector(
            tok2vec, head, attrs=model_attrs, mixed_precision=mixed_precision, learn_rate_scale=learn_rate_scale
        )

    params = [
        inspect.Parameter("tok2vec", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Model[List[Doc], List[Floats2d]]),
        *settings,
        inspect.Parameter("mixed_precision", inspect.Parameter.KEYWORD_ONLY, annotation=bool),
        inspect.Parameter("learn_rate_scale", inspect.Parameter.KEYWORD_ONLY, annotation=float),
    ]
    return with_signature(build, params, Model, name=name, doc=doc)


build_locate_label_model = head_architecture(
    LocateLabelHead,
    "build_locate_label_model",
    attrs=("use_filter", "use_regressor"),
    doc="""Locate and Label (Shen et al. 2021): filter, boundary regressor, classifier.

    ``lstm_hidden`` > 0 adds the paper's BiLSTM over the encoder output.
    ``use_filter``/``use_regressor`` switch components off for the Table 3
    ablation. ``dropout`` applies inside the torch head (spaCy's
    ``[training] dropout`` reaches only thinc layers).
    """,
)

build_boundary_offset_model = head_architecture(
    BoundaryOffsetHead,
    "build_boundary_offset_model",
    attrs=("max_offset",),
    doc="""Boundary Offset Prediction Network (Tang et al. 2023), switches for Table 4.

    ``max_offset`` S (0 = "w/o BO"); ``type_input`` (off = "w/o Type Inp.");
    ``region_width`` 0 drops the region embedding; ``distance_width`` and
    ``cln_fusion`` are the authors' code-only extras; ``conv_dilations`` one
    entry per 3D conv layer (``[]`` = "w/o 3DConv"), stacked or parallel, added
    to or replacing the scores. ``max_cells`` bounds the padded cells of one
    length group (0: the batch is one group; speed/memory only, results do not
    depend on it).
    """,
)

build_proposer_regressor_model = head_architecture(
    ProposerRegressorHead,
    "build_proposer_regressor_model",
    attrs=("max_width",),
    doc="""Proposer and regressor (Wen et al. 2023), switches for Table 6.

    ``encoder_gru`` the BiGRU of eq. 4; ``kernels`` the pyramid's Conv1D kernels
    (``[]`` = no pyramid); ``backward`` the backward blocks, ``pool`` their
    residual ("avg" paper, "max" code); ``query`` "bottom" (paper) or "fused"
    (code); ``n_layers`` regressor iterations; ``spatial`` the spatial prior;
    ``gate`` "gru" (eqs. 18–19) or "ffn" (code); ``category_embedding``,
    ``location_iteration``, ``logits_iteration`` eqs. 11, 16, 20;
    ``max_width`` bounds the pointer (spans of at most this many tokens near
    each proposal).
    """,
)
