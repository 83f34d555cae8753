"""spaCy components: one file per factory plus the shared base pipe."""
