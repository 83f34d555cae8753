"""The Boundary Offset Prediction Network (Tang et al., 2023): a label grid over token pairs.

``boundary_offset_ner``: `component`; the torch head: `head`; the grid's labels and
the vote decoding: `codec`; the loss: `loss`.
"""
