"""``python -m spacy_nested``: run the command-line interface."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="python -m spacy_nested")
