"""Registered thinc architectures of the detectors.

Each one is ``chain(tok2vec, torch head)`` built by ``bridge.build_span_detector``;
``tok2vec`` is any ``Model[List[Doc], List[Floats2d]]``: a ``spacy.Tok2VecListener.v1``
behind a shared ``tok2vec``, a ``spacy-transformers.TransformerListener.v1``
behind a shared ``transformer``, or an inline ``spacy.Tok2Vec.v2``.
"""
from typing import List

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..heads.locate_label import LocateLabelHead
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
    head = LocateLabelHead(
        hidden_width=hidden_width,
        lstm_hidden=lstm_hidden,
        dropout=dropout,
        use_filter=use_filter,
        use_regressor=use_regressor,
        filter_threshold=filter_threshold,
    )
    return build_span_detector(tok2vec, head, mixed_precision=mixed_precision)
