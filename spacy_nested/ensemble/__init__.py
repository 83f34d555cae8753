"""``nested_ensemble``: several detectors' spans merged into one prediction.

`component` (the pipe), `merge` (the merge rules, numpy), `tune` (weights and
threshold on dev), `build` (combining trained pipelines, shared-encoder configs).
"""
