"""Annotate a corpus with any spaCy pipeline into JSONL records, resumably.

``python -m spacy_nested annotate MODEL INPUT OUTPUT`` (``command.py``). The parts, each one idea:

* ``inputs``: the input records (``.txt``, ``.jsonl``, ``.spacy`` or a folder of them), read
  line by line with ``file:line:column`` errors, and the input's fingerprint;
* ``run``: the output pieces and the run's record of what it was started with (``run.json``),
  which makes ``--resume`` safe whatever is passed again;
* ``engines``: turning records into output records on this process, local worker processes or
  a Dask cluster, and the one driver loop that writes the pieces in order.

Nothing here imports the command, and the engines own every way of running a piece, so the
modules import each other in that order only.
"""
from spacy_nested.annotation.engines import annotate, annotate_with
from spacy_nested.annotation.run import RunSettings

__all__ = ["RunSettings", "annotate", "annotate_with"]
