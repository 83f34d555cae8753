"""Target encoding and decoding per detector (numpy; no spaCy, no torch)."""
