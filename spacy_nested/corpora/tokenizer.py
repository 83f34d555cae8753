"""A serializable whitespace tokenizer for pre-tokenized corpora.

Nested NER corpora (GENIA, ACE, ...) ship pre-tokenized sentences. We store
them as text with tokens joined by single spaces and no trailing space, so
that splitting the text on single spaces gives the original tokens back:

    >>> doc = doc_from_tokens(vocab, ["IL-2", "gene"])   # doc.text == "IL-2 gene"
    >>> [t.text for t in nlp.make_doc(doc.text)]        # ["IL-2", "gene"]

`WhitespaceTokenizer` is the runtime side of that contract. It is registered
as ``spacy_nested.WhitespaceTokenizer.v1`` (decorator here, and the
``spacy_tokenizers`` entry point), and it implements the serialization
methods that ``nlp.to_disk`` / ``spacy.load`` call, so a trained pipeline
rebuilds it from its config alone:

    [nlp.tokenizer]
    @tokenizers = "spacy_nested.WhitespaceTokenizer.v1"

A pipeline for raw text uses another tokenizer (``spacy_nested.BiomedicalTokenizer.v1``, in
`spacy_nested.corpora.biomedical_tokenizer`), and trains on the corpus's tokens all the same through
`GoldTokensCorpus` (``spacy_nested.GoldTokensCorpus.v1``), the reader of the shipped configs.
"""

from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import ensure_path
from spacy.vocab import Vocab


class WhitespaceTokenizer:
    """Split text on single spaces; ``doc.text == text`` for every input.

    Runs of spaces, and leading or trailing spaces, become whitespace tokens
    (spaCy's convention), so no token is empty and the text round trips.
    Pre-tokenized text (tokens joined by single spaces) never produces them.
    """

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        if not text:
            return Doc(self.vocab, words=[], spaces=[])
        words = text.split(" ")
        spaces = [True] * len(words)
        for i, word in enumerate(words):
            if word == "":
                words[i] = " "
                spaces[i] = False
        if words[-1] == " ":
            words.pop()
            spaces.pop()
        else:
            spaces[-1] = False
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterable[Doc]:
        """Tokenize a stream of texts (``batch_size`` is accepted and ignored)."""
        for text in texts:
            yield self(text)

    # The tokenizer has no state. These methods exist so that Language's
    # serialization (which calls them unconditionally) works.

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({})

    def from_bytes(
        self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()
    ) -> "WhitespaceTokenizer":
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        file_path: Path = ensure_path(path)
        with file_path.open("wb") as file_:
            file_.write(self.to_bytes(exclude=exclude))

    def from_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()
    ) -> "WhitespaceTokenizer":
        return self


def create_whitespace_tokenizer() -> Callable[[Language], WhitespaceTokenizer]:
    """Return the function spaCy calls with the `nlp` object to build the tokenizer."""

    def create_tokenizer(nlp: Language) -> WhitespaceTokenizer:
        return WhitespaceTokenizer(nlp.vocab)

    return create_tokenizer


def token_problem(token: object) -> Optional[str]:
    """Why `token` cannot round trip through `WhitespaceTokenizer`, or None.

    A token must be a non-empty string without any whitespace character.
    """
    if not isinstance(token, str):
        return f"must be a string, got {type(token).__name__}"
    if token == "":
        return "is empty"
    if any(char.isspace() for char in token):
        return f"{token!r} contains whitespace"
    return None


def validate_tokens(tokens: Sequence[str]) -> None:
    """Raise ValueError naming the first token that cannot round trip."""
    for i, token in enumerate(tokens):
        problem = token_problem(token)
        if problem is not None:
            raise ValueError(
                f"token {i} {problem}: tokens must be non-empty and contain no whitespace"
            )


def doc_from_tokens(
    vocab: Vocab, tokens: List[str], spaces: Optional[Sequence[bool]] = None
) -> Doc:
    """Build a Doc whose text is the tokens joined by single spaces (by default).

    The Doc's tokens are exactly `tokens`, and ``WhitespaceTokenizer`` gives
    the same tokens back from ``doc.text``. An empty list gives an empty Doc.
    Raises ValueError for empty tokens and tokens containing whitespace.

    spaces (Optional[Sequence[bool]]): whether each token is followed by a
        space, for text tokenized by a language tokenizer (BRAT documents).
        The tokens then only need to be non-empty strings: spaCy's whitespace
        tokens (``"\\n"``, ``" "``) are allowed, and the text need not round
        trip through ``WhitespaceTokenizer``.
    """
    if spaces is None:
        validate_tokens(tokens)
        spaces = [True] * (len(tokens) - 1) + [False] if tokens else []
    else:
        if len(spaces) != len(tokens):
            raise ValueError(f"{len(spaces)} spaces for {len(tokens)} tokens")
        for i, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                raise ValueError(f"token {i} must be a non-empty string, got {token!r}")
    return Doc(vocab, words=list(tokens), spaces=list(spaces))


def retokenized_as(reference: Doc, vocab: Vocab) -> Doc:
    """A blank doc with ``reference``'s tokens and spaces, for a pipeline to predict on."""
    return Doc(vocab, words=[t.text for t in reference], spaces=[bool(t.whitespace_) for t in reference])


class GoldTokensCorpus(Corpus):
    """spaCy's `Corpus` reader, whose predicted docs always have the gold docs' tokens.

    spaCy's reader tokenizes the text of each gold doc with the pipeline's
    tokenizer, unless ``gold_preproc`` is set. A pipeline meant for raw text has
    a tokenizer that is not the corpus's (``spacy_nested.BiomedicalTokenizer.v1``
    differs from GENIA's tokens on a few in a thousand), and ``gold_preproc`` is
    no way out: it splits a doc with sentence starts (``convert --group-by
    doc_id``) into one doc per sentence, losing the document context, and spaCy's
    ``Span.as_doc`` drops ``doc.spans`` on the way, so such docs would train
    without any gold span. This reader keeps each doc whole and builds its
    predicted side from the gold words and spaces, as the whitespace tokenizer
    does for converted corpora: training and evaluation see exactly the
    corpus's tokens, whatever ``[nlp.tokenizer]`` says.

    Registered as ``spacy_nested.GoldTokensCorpus.v1``, with the arguments of
    ``spacy.Corpus.v1`` except ``gold_preproc``.
    """

    def _make_example(self, nlp: Language, reference: Doc, gold_preproc: bool) -> Example:
        return Example(retokenized_as(reference, nlp.vocab), reference)


def create_gold_tokens_corpus(
    path: Optional[Path],
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable[..., Iterable[Example]]] = None,
) -> GoldTokensCorpus:
    """A `GoldTokensCorpus` over the DocBins at `path` (a file or a directory of ``.spacy`` files)."""
    if path is None:
        raise ValueError("No path given for the corpus: set [paths.train] and [paths.dev] (or pass --paths.train ...)")
    return GoldTokensCorpus(path, max_length=max_length, limit=limit, augmenter=augmenter)
