"""spacy-nested: nested named entity recognition components for spaCy.

Components (registered through entry points, so no import is needed):
``locate_label_ner``, ``boundary_offset_ner``, ``proposer_regressor_ner``. Predictions go to
``doc.spans["nested"]`` with one score
per span in ``doc.spans[key].attrs["scores"]``.
"""
import copy
import importlib
from typing import Any, Dict

__version__ = "0.1.0"

_DETECTOR_MODULES = {
    "locate_label_ner": "spacy_nested.detectors.locate_label.component",
    "boundary_offset_ner": "spacy_nested.detectors.boundary_offset.component",
    "proposer_regressor_ner": "spacy_nested.detectors.proposer_regressor.component",
}


def paper_settings(factory: str) -> Dict[str, Any]:
    """The paper's settings of a detector where its defaults differ, as a component config:
    ``nlp.add_pipe("locate_label_ner", config=paper_settings("locate_label_ner"))``.

    The defaults are the settings measured best on spaCy's CPU tok2vec (each detector's page in
    docs/ says what differs and why); the papers tuned theirs on BERT-sized encoders.
    """
    if factory not in _DETECTOR_MODULES:
        raise ValueError(f"no paper settings for {factory!r}: choose one of {sorted(_DETECTOR_MODULES)}")
    return copy.deepcopy(importlib.import_module(_DETECTOR_MODULES[factory]).PAPER_SETTINGS)
