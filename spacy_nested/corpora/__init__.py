"""Getting text and annotations in: corpus formats, tokenizers, augmenters.

`formats` (GENIA jsonlines and XML, BRAT, CoNLL, DocBin output), `tokenizer` (gold
tokens, whitespace), `biomedical_tokenizer` (raw text), `augmenters`.
"""
