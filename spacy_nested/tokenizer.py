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
"""

from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc
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
