"""Every registered function of the package, in one place (as spaCy's ``registrations.py``).

The functions themselves live where their idea lives, most of them in modules
that import no spaCy (``spans``, ``codecs``, ``heads``); this module puts them
in spaCy's registries. The component factories register themselves with
``@Language.factory`` beside their code in ``detectors/<name>/component.py`` and ``ensemble/component.py``, whose modules import
this one, and ``pyproject.toml`` declares the same names as entry points, so a
config needs no ``--code``.

Settings groups of the factories (``[components.NAME.<group>]`` in a config):

=============  ==========================================  ========================
group          registered name                             detectors
=============  ==========================================  ========================
segmenter      ``spacy_nested.segments.v1``                all three
seed_widths    ``spacy_nested.window_seeds.v1``            locate_label_ner
sampling       ``spacy_nested.locate_label_sampling.v1``   locate_label_ner
loss           ``spacy_nested.<detector>_loss.v1``         each its own
decoder        ``spacy_nested.soft_nms.v1``                locate_label_ner
decoder        ``spacy_nested.offset_votes.v1``            boundary_offset_ner
decoder        ``spacy_nested.proposal_decoder.v1``        proposer_regressor_ner
=============  ==========================================  ========================
"""
from spacy.util import registry

from spacy_nested.corpora.augmenters import make_span_copier
from spacy_nested.corpora.biomedical_tokenizer import create_biomedical_tokenizer
from spacy_nested.corpora.tokenizer import create_gold_tokens_corpus, create_whitespace_tokenizer
from spacy_nested.detectors.boundary_offset.codec import VoteDecoder
from spacy_nested.detectors.boundary_offset.loss import BoundaryOffsetLoss
from spacy_nested.detectors.locate_label.codec import Sampling, SoftNMSDecoder
from spacy_nested.detectors.locate_label.loss import LocateLabelLoss
from spacy_nested.detectors.locate_label.seeds import make_window_seeds
from spacy_nested.detectors.proposer_regressor.codec import ProposalDecoder
from spacy_nested.detectors.proposer_regressor.loss import ProposerRegressorLoss
from spacy_nested.evaluation.scoring import make_nested_scorer
from spacy_nested.ml.architectures import build_boundary_offset_model, build_locate_label_model, build_proposer_regressor_model
from spacy_nested.ml.bridge import flat_training_memory
from spacy_nested.ml.encoders import initialize_frozen, installed_transformer
from spacy_nested.ml.quantize import quantize_int8
from spacy_nested.spans import Segmenter

ARCHITECTURES = {
    "spacy_nested.LocateLabel.v1": build_locate_label_model,
    "spacy_nested.BoundaryOffset.v1": build_boundary_offset_model,
    "spacy_nested.ProposerRegressor.v1": build_proposer_regressor_model,
}
MISC = {
    "spacy_nested.segments.v1": Segmenter,
    "spacy_nested.window_seeds.v1": make_window_seeds,
    "spacy_nested.locate_label_sampling.v1": Sampling,
    "spacy_nested.locate_label_loss.v1": LocateLabelLoss,
    "spacy_nested.boundary_offset_loss.v1": BoundaryOffsetLoss,
    "spacy_nested.proposer_regressor_loss.v1": ProposerRegressorLoss,
    "spacy_nested.soft_nms.v1": SoftNMSDecoder,
    "spacy_nested.offset_votes.v1": VoteDecoder,
    "spacy_nested.proposal_decoder.v1": ProposalDecoder,
    "spacy_nested.installed_transformer.v1": installed_transformer,
}

for name, build in ARCHITECTURES.items():
    registry.architectures.register(name, func=build)
for name, make in MISC.items():
    registry.misc.register(name, func=make)
registry.scorers.register("spacy_nested.nested_scorer.v1", func=make_nested_scorer)
registry.tokenizers.register("spacy_nested.WhitespaceTokenizer.v1", func=create_whitespace_tokenizer)
registry.tokenizers.register("spacy_nested.BiomedicalTokenizer.v1", func=create_biomedical_tokenizer)
registry.readers.register("spacy_nested.GoldTokensCorpus.v1", func=create_gold_tokens_corpus)
registry.augmenters.register("spacy_nested.copy_spans.v1", func=make_span_copier)
CALLBACKS = {
    "spacy_nested.initialize_frozen.v1": initialize_frozen,
    "spacy_nested.flat_training_memory.v1": flat_training_memory,
    "spacy_nested.quantize_int8.v1": quantize_int8,
}
for name, callback in CALLBACKS.items():
    registry.callbacks.register(name, func=callback)
