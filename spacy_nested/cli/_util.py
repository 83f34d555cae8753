"""The one `app` every command registers on, and the one way a command fails.

As in spaCy (``spacy/cli/_util.py``): each command module decorates its
commands with ``@app.command("name")``; ``python -m spacy_nested``
(`spacy_nested.__main__`) imports the command modules, which registers them.
The project's scripts (``scripts/`` beside project.yml) have their own typer
apps and fail through `fail` too.
"""

from typing import NoReturn

import typer

app = typer.Typer(
    name="spacy-nested",
    help="Nested named entity recognition for spaCy: corpus tools.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Nested named entity recognition for spaCy: corpus tools."""


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` to stderr and exit with code 1.

    For errors found while a command runs; a bad combination of options is a
    `typer.BadParameter` (exit code 2, with the usage line).
    """
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=1)
