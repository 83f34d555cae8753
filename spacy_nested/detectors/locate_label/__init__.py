"""Locate and Label (Shen et al., 2021): seeds, a filter, boundary regression and a classifier.

``locate_label_ner``: `component`; the torch head: `head`; targets and Soft-NMS
decoding: `codec`, `seeds`, `nms`; the loss: `loss`.
"""
