"""``python -m spacy_nested``: one module per user command, each thin over the library.

`_util` holds the one typer ``app`` and ``fail``; `__main__` imports the command
modules, which registers them.
"""
