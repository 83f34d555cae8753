"""A small nested-NER fixture and pipeline builders shared by the pipe tests."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

# The factories register when their modules are imported (spaCy would import them through the
# entry points on first use): model_config() reads their default configs before any pipe exists.
from spacy_nested.detectors.boundary_offset import component as boundary_offset  # noqa: F401

# (tokens, [(start, end, label)]) — nested, one span with two types, a long entity
SENTENCES: List[Tuple[str, List[Tuple[int, int, str]]]] = [
    ("IL-2 gene expression requires NF-kappa B activation", [(0, 1, "protein"), (0, 2, "DNA"), (3, 5, "protein")]),
    (
        "human T cells express the IL-2 receptor alpha chain",
        [(0, 3, "cell_type"), (1, 3, "cell_type"), (5, 9, "protein"), (5, 6, "protein")],
    ),
    ("the c-fos promoter binds AP-1 in Jurkat cells", [(1, 3, "DNA"), (1, 2, "protein"), (4, 5, "protein"), (6, 8, "cell_line")]),
    ("GATA-1 mRNA was detected in erythroid progenitor cells", [(0, 2, "RNA"), (0, 1, "protein"), (5, 8, "cell_type")]),
    ("we studied the long terminal repeat of the human immunodeficiency virus type 1", [(3, 13, "DNA")]),
    ("no entities appear in this short sentence", []),
    ("TNF alpha and IL-6 levels rose in monocytes", [(0, 2, "protein"), (3, 4, "protein"), (7, 8, "cell_type")]),
    ("the CD28 gene is expressed in peripheral blood T lymphocytes", [(1, 2, "protein"), (1, 3, "DNA"), (6, 10, "cell_type")]),
]
LABELS = sorted({label for _, spans in SENTENCES for *_, label in spans})


def make_doc(vocab, text: str, spans: Sequence[Tuple[int, int, str]], key: str = "nested") -> Doc:
    words = text.split(" ")
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    doc.spans[key] = [Span(doc, s, e, label=label) for s, e, label in spans]
    return doc


def make_examples(nlp: Language, key: str = "nested") -> List[Example]:
    return [Example(nlp.make_doc(text), make_doc(nlp.vocab, text, spans, key)) for text, spans in SENTENCES]


SMALL_TOK2VEC = {
    "model": {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": 48,
            "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
            "rows": [2000, 500, 500, 500],
            "include_static_vectors": False,
        },
        "encode": {
            "@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 48, "window_size": 1, "maxout_pieces": 3, "depth": 2
        },
    }
}

HEAD_SIZES: Dict[str, dict] = {
    "locate_label_ner": {"hidden_width": 64, "dropout": 0.0},
    "boundary_offset_ner": {
        "lstm_hidden": 32, "lstm_dropout": 0.0, "biaffine_hidden": 32, "biaffine_dropout": 0.0, "conv_dropout": 0.0
    },
    "proposer_regressor_ner": {"hidden_width": 32, "n_heads": 4, "ffn_width": 64, "dropout": 0.0},
}


def model_config(factory: str, **settings) -> dict:
    """The factory's default model block with the small test sizes, listening to the shared tok2vec."""
    base = Language.get_factory_meta(factory).default_config["model"].copy()
    base.update(HEAD_SIZES.get(factory, {}))
    base["tok2vec"] = {"@architectures": "spacy.Tok2VecListener.v1", "width": 48, "upstream": "*"}
    base.update(settings)
    return base


def build_nlp(factory: str, config: Optional[dict] = None) -> Language:
    """blank English + whitespace tokenizer + shared tok2vec + the detector listening to it."""
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_nested.WhitespaceTokenizer.v1"}}})
    nlp.add_pipe("tok2vec", config=SMALL_TOK2VEC)
    nlp.add_pipe(factory, config={"model": model_config(factory), **(config or {})})
    return nlp


def train(
    nlp: Language, examples: List[Example], n_iter: int, seed: int = 0, learn_rate: Optional[float] = None
) -> List[float]:
    spacy.util.fix_random_seed(seed)
    optimizer = nlp.initialize(lambda: examples)
    if learn_rate is not None:
        optimizer.learn_rate = learn_rate
    losses = []
    for _ in range(n_iter):
        out = nlp.update(examples, sgd=optimizer, drop=0.0)
        losses.append(sum(v for k, v in out.items() if k != "tok2vec"))
    return losses


def save_trained(factory: str, n_iter: int, path: Path, config: Optional[dict] = None) -> Path:
    """Train ``build_nlp(factory, config)`` on the fixture for ``n_iter`` updates and save it to
    ``path/model``, with the fixture's gold docs as ``path/dev.spacy``; returns ``path``."""
    nlp = build_nlp(factory, config)
    examples = make_examples(nlp)
    train(nlp, examples, n_iter)
    nlp.to_disk(path / "model")
    DocBin(docs=[eg.reference for eg in examples]).to_disk(path / "dev.spacy")
    return path
