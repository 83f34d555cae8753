"""``python -m spacy_nested``: run the command-line interface.

Importing the command modules registers their commands on the one `app`.
"""

from . import cli, configs_gen, ensemble_build, ensemble_cli, report, upgrade, workflow  # noqa: F401  (imported for their commands)
from ._cli_util import app
from .annotation import command as annotate_command  # noqa: F401  (imported for its command)

if __name__ == "__main__":
    app(prog_name="python -m spacy_nested")
