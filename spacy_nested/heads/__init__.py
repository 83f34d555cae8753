"""Pure torch heads: the papers' equations. Nothing here imports spaCy."""
