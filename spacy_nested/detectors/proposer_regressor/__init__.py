"""The proposer and regressor (Wen et al., 2023): proposals, pointers to boundaries and set matching.

``proposer_regressor_ner``: `component`; the torch head: `head`; pointer tables,
matching and decoding: `codec`; the loss: `loss`.
"""
