"""spacy-nested: nested named entity recognition components for spaCy.

Components (registered through entry points, so no import is needed):
``locate_label_ner``, ``boundary_offset_ner``, ``proposer_regressor_ner``. Predictions go to
``doc.spans["nested"]`` with one score
per span in ``doc.spans[key].attrs["scores"]``.
"""
__version__ = "0.1.0"
