"""``python -m spacy_nested``: the commands a user of the library runs.

convert, annotate, evaluate, report, tune-ensemble, combine-pipelines,
shared-encoder-config, distill and quantize. Importing the command modules registers their commands
on the one `app`. The steps of this repository's own spaCy project (training,
tuning, config generation) are not here: they are the scripts beside
project.yml (``scripts/``), which import the library, never the other way.
"""

from spacy_nested.cli import annotate, convert, distill, ensemble, evaluate, quantize  # noqa: F401  (imported for their commands)
from spacy_nested.cli._util import app

if __name__ == "__main__":
    app(prog_name="python -m spacy_nested")
