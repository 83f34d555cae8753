"""A tiny randomly initialised BERT, written to a local directory.

The tests never reach a model hub: ``make_tiny_bert(path)`` writes a
``BertModel`` (hidden size 32, 2 layers, 2 heads) and a WordPiece tokenizer
over a small vocab (specials, letters, digits, punctuation and their ``##``
continuations) with ``save_pretrained``, so that
``spacy-transformers.TransformerModel.v3`` can load it by path with
``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1``.
"""
import os
import string
from pathlib import Path
from typing import List, Union

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WHOLE_WORDS = [
    "the", "of", "and", "in", "to", "a", "is", "by", "gene", "protein", "cell", "cells",
    "expression", "promoter", "binding", "factor", "receptor", "human", "activation",
]


def set_offline() -> None:
    """Forbid any hub access (the tests have no network)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def tiny_vocab() -> List[str]:
    chars = list(string.ascii_letters + string.digits + string.punctuation)
    vocab = SPECIAL_TOKENS + chars + ["##" + c for c in chars] + WHOLE_WORDS
    seen, out = set(), []
    for piece in vocab:
        if piece not in seen:
            seen.add(piece)
            out.append(piece)
    return out


def make_tiny_bert(path: Union[str, Path]) -> str:
    """Write a tiny random BERT and its tokenizer to ``path``; return it as a string."""
    set_offline()
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=False, model_max_length=512)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    model = BertModel(config)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path)


# A small nested fixture: (tokens, [(start, end, label), ...]).
NESTED_SENTENCES = [
    (
        "IL-2 gene expression requires NF-kappa B activation in human T cells .".split(),
        [(0, 2, "DNA"), (0, 1, "protein"), (4, 6, "protein"), (8, 11, "cell_type")],
    ),
    (
        "The CD28 receptor binds B7-1 on activated B cells .".split(),
        [(1, 3, "protein"), (1, 2, "protein"), (4, 5, "protein"), (6, 9, "cell_type")],
    ),
    (
        "GATA-1 binding sites in the globin promoter were mutated .".split(),
        [(0, 3, "DNA"), (0, 1, "protein"), (5, 7, "DNA")],
    ),
    (
        "Human monocytes express the TNF-alpha gene after LPS stimulation .".split(),
        [(0, 2, "cell_type"), (4, 6, "DNA"), (4, 5, "protein")],
    ),
    (
        "The c-fos promoter contains an AP-1 binding site .".split(),
        [(1, 3, "DNA"), (1, 2, "DNA"), (5, 8, "DNA"), (5, 6, "protein")],
    ),
    (
        "STAT3 and STAT5 proteins are activated by IL-6 in hepatocytes .".split(),
        [(0, 1, "protein"), (2, 3, "protein"), (0, 4, "protein"), (7, 8, "protein"), (9, 10, "cell_type")],
    ),
]

NESTED_LABELS = ["DNA", "cell_type", "protein"]


def make_nested_docs(vocab, key: str = "nested"):
    """Docs of ``NESTED_SENTENCES`` with gold spans under ``doc.spans[key]``.

    Tokens are joined by single spaces (the whitespace tokenizer's contract).
    """
    from spacy.tokens import Doc, Span

    docs = []
    for words, spans in NESTED_SENTENCES:
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in spans]
        docs.append(doc)
    return docs


def long_tokens(n: int = 40) -> List[str]:
    """``n`` tokens built from the fixture sentences (longer than a 16-piece window)."""
    words: List[str] = []
    while len(words) < n:
        for tokens, _ in NESTED_SENTENCES:
            words.extend(tokens)
    return words[:n]


def make_concatenated_doc(vocab, key: str = "nested"):
    """All fixture sentences as one doc (about 65 tokens), gold spans shifted."""
    from spacy.tokens import Doc, Span

    words, spans = [], []
    for tokens, gold in NESTED_SENTENCES:
        spans.extend((s + len(words), e + len(words), label) for s, e, label in gold)
        words.extend(tokens)
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in spans]
    return doc


def train_step(nlp, examples, optimizer, *, drop: float = 0.0, exclude=(), annotates=()):
    """One update as ``spacy train`` does it (``spacy.training.loop.train_while_improving``).

    ``nlp.update(..., sgd=False)`` first, so every listener has sent its
    gradient back to the shared tok2vec/transformer, then ``finish_update``
    on every trainable pipe. (``nlp.update(..., sgd=optimizer)`` instead
    calls ``finish_update`` on each pipe right after its own update, so a
    shared transformer applies the head's gradient one update later.)
    """
    losses = {}
    nlp.update(examples, drop=drop, losses=losses, sgd=False, exclude=list(exclude), annotates=list(annotates))
    for name, proc in nlp.pipeline:
        if (
            name not in exclude
            and getattr(proc, "is_trainable", False)
            and proc.model not in (True, False, None)
        ):
            proc.finish_update(optimizer)
    return losses


def add_tiny_transformer(nlp, bert_dir: str, *, window: int, stride: int) -> None:
    """A "transformer" pipe over the tiny BERT at `bert_dir`, in strided windows of word pieces."""
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": bert_dir,
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": window, "stride": stride},
                "tokenizer_config": {"use_fast": True},
                "transformer_config": {},
                "mixed_precision": False,
                "grad_scaler_config": {},
            }
        },
    )


def transformer_listener(pooling: str = "reduce_mean.v1") -> dict:
    """A detector's ``model.tok2vec``: a listener to the pipeline's "transformer"."""
    return {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "upstream": "*",
        "pooling": {"@layers": pooling},
    }
