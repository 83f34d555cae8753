"""thinc architectures: chain(tok2vec or transformer listener, torch head)."""
