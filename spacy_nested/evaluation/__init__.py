"""Measuring a pipeline: scores, thresholds, intervals, reports, pictures.

`scoring` (the nested scorer, by type, length and depth), `thresholds` (one
prediction, every threshold), `bootstrap` (paired intervals), `report` (metrics
files and the side-by-side report), `visualize` (displaCy).
"""
