"""The three span detectors, one folder each, and the pipe they share (`base`).

Each detector's folder holds the same files, each one idea:

* ``component.py``: the spaCy pipe and its factory (a plain typed ``def``, its
  default config the measured best on spaCy's CPU tok2vec, the paper's settings
  as ``PAPER_SETTINGS``); it builds training targets from Examples and turns
  the head's output into ``doc.spans``;
* ``head.py``: the torch module (no spaCy);
* ``codec.py``: the label scheme, gold spans to targets and scores to spans
  (numpy only);
* ``loss.py``: the loss and its registered settings (torch only).

Locate and Label adds ``seeds.py`` (its candidate spans) and ``nms.py``
(Soft-NMS). The thinc model around every head (encoder once, head over
segments, the torch bridge) is in `spacy_nested.ml`.
"""
