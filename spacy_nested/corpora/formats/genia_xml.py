"""Reader for the GENIA 3.02 term corpus XML (``GENIAcorpus3.02.xml``).

The format (``gpml.dtd``)::

    <set>
      <article>
        <articleinfo><bibliomisc>MEDLINE:95369245</bibliomisc></articleinfo>
        <title><sentence>... <cons lex="CD28" sem="G#protein_molecule">CD28</cons>
          ...</sentence></title>
        <abstract><sentence>...</sentence> ...</abstract>
      </article>
      ...
    </set>

A ``<cons>`` marks a term; terms nest. Coordinated terms carry a compound
``sem`` and are made of ``<cons>`` fragments without a ``sem`` whose ``lex``
marks the missing part with ``*``::

    <cons lex="(AND human_interleukin-2 human_interleukin-4)"
          sem="(AND G#protein_molecule G#protein_molecule)"><cons
          lex="human_interleukin*">human interleukin</cons><cons
          lex="*-2">-2</cons> and <cons lex="*-4">-4</cons></cons>

The choices below reproduce the project's ``genia/train.jsonl``, which
follows yhcc/CNN_Nested_NER's GENIA preprocessing (see the data README).

* **Sentences.** One `NestedSentence` per ``<sentence>``, in document order
  (title sentences first, then the abstract's). ``doc_id`` is the text of
  ``<articleinfo><bibliomisc>`` (``"MEDLINE:<id>"``), ``sent_id`` is
  ``f"{doc_id}-{i}"`` with ``i`` counting every ``<sentence>`` of the
  article from 0 (the title is 0). A sentence without any token is skipped
  with a `FormatWarning`; the others keep their index.
* **Entities.** A ``<cons>`` is a mention iff its own ``sem`` is a single
  type (no parentheses) that maps to one of the five types:
  ``G#DNA_*`` -> DNA, ``G#RNA_*`` -> RNA, ``G#protein_*`` -> protein,
  ``G#cell_line``, ``G#cell_type``. Everything else is ignored: other types
  (``G#lipid``, ``G#virus``, ...), coordinated or discontinuous terms
  (``sem="(AND ...)"``, ``(OR ...)``, ``(BUT_NOT ...)``, ...) and their
  fragments (no ``sem``). Contiguous ``<cons>`` nested inside a coordination
  that carry their own valid ``sem`` are kept. ``lex`` is not consulted: a
  ``*`` in it marks a fragment, but fragments have no ``sem``, and a ``*``
  can belong to the name (``lex="silent_FY*B_allele"`` is a DNA mention).
  Mentions are half-open token offsets listed inner-first (in the order of
  the end tags, as in the jsonl); exact duplicates are dropped.
* **Tokens.** A rule-based tokenizer imitating the GENIA POS-corpus tokens
  (``tokenize_genia``); the text is first cut at every ``<cons>`` boundary,
  so every mention is a whole number of tokens (``<cons>CD28</cons>-mediated``
  gives ``CD28``, ``-mediated``). Each piece between whitespace and cuts is
  then split as follows; hyphens, slashes, inner periods and commas
  (``IL-2``, ``p50/p65``, ``PU.1``, ``1,25``) never split:

  - ``...``, ``--``, ``:`` and ``"`` are tokens wherever they occur
    (``G0-->S`` gives ``G0``, ``--``, ``>S``);
  - ``,`` ``;`` ``?`` ``!`` ``%`` and closing ``}`` split off the end;
    ``{`` and a closing ``)`` or ``]`` off the start;
  - ``.`` splits off the end of the sentence's last piece only
    (``e.g.``, ``M. tuberculosis``, ``1. Administration`` stay whole);
  - ``'s`` and ``n't`` split off; a quote splits off the start, and off the
    end after a lower-case letter (``patients '``), but ``5'`` and ``I'``
    stay whole;
  - a parenthesis splits off when it is unmatched within the piece; a
    matched group splits out when it ends the piece (``t(8;21)`` gives
    ``t``, ``(``, ``8;21``, ``)``) or starts it and is followed by a hyphen
    (``(IL)-1`` gives ``(``, ``IL``, ``)``, ``-1``); other matched groups
    stay inside the token (``1,25(OH)2D3``, ``I(kappa)B``, ``CD8(+)-T-cell``).
    Square brackets split off only when unmatched (``[3H]dexamethasone``).

  On the first 60 train abstracts (``genia/raw-sample``) these rules give
  the jsonl's tokens in every sentence; on the whole train split they would
  split 15 of its 399,439 tokens further (``Ca(2+)``, ``E(gre)``, ...).
* **Articles.** ``path`` is one XML file or a directory, whose ``*.xml``
  files are read in name order. An article id seen twice (GENIA 3.02 has
  ``MEDLINE:97218353`` twice, with conflicting annotation) keeps the
  position of its first occurrence and the content of its last, as yhcc
  did, with a `FormatWarning`. ``doc_ids`` (a file of ``MEDLINE:<id>``
  lines, blank lines ignored, e.g. yhcc's ``splits/genia/train.txt``)
  keeps only the listed articles, in XML order; listed ids that are in no
  file are counted in one `FormatWarning`.
* **Errors.** Malformed XML raises `FormatError` with the file and the
  parser's line; an ``<article>`` without a ``<bibliomisc>`` id raises it
  with the article's line, and so does an entity reference other than the
  five predefined ones (the DTD is not read). A file without any
  ``<article>``, and an input (or a ``doc_ids`` selection) without any
  sentence, raise it too ("no sentences found"). Unlike the other readers,
  this one cannot skip invalid records (no `Skipped`): expat stops at the
  first XML error. ElementTree does not record where elements start, so the
  file is parsed with `xml.parsers.expat` driving an ElementTree
  `TreeBuilder` whose elements remember the line of their start tag.
  Everything is read (and checked) before the first sentence is yielded.
"""

import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union, cast
from xml.parsers import expat

from spacy_nested.corpora.formats.base import LabeledSpan, NestedSentence, input_files
from spacy_nested.corpora.formats.errors import NO_SENTENCES, FormatError, FormatWarning

__all__ = ["ENTITY_TYPES", "map_sem", "read_doc_ids", "read_genia_xml", "tokenize_genia"]

ENTITY_TYPES = ("DNA", "RNA", "protein", "cell_line", "cell_type")
_SEM_PATTERN = re.compile(r"G#(?:(DNA|RNA|protein)_\S+|(cell_line|cell_type))")
_SEPARATE = re.compile(r'(\.\.\.|--|:|")')  # tokens wherever they occur
_TRAILING = ",;?!}%"  # split off the end of a piece
_LEADING = "{)]"  # split off the start of a piece
_MAX_LISTED = 5  # unknown ids quoted in the warning

CharSpan = Tuple[int, int]


class _LineElement(ET.Element):
    """An Element that remembers the (1-based) line of its start tag."""

    line: int = 0


@dataclass
class _Article:
    doc_id: str
    path: Path
    line: int
    element: ET.Element


def read_genia_xml(
    path: Union[str, Path], doc_ids: Optional[Union[str, Path]] = None
) -> Iterator[NestedSentence]:
    """Read GENIA 3.02 XML, one `NestedSentence` per ``<sentence>``.

    path (Path): an XML file, or a directory whose ``*.xml`` files are read.
    doc_ids (Optional[Path]): a file of ``MEDLINE:<id>`` lines; only those
        articles are read, in XML order.
    RAISES (FormatError): on malformed XML, an article without an id or a
        file without articles, when iteration starts; at the end, when no
        sentence was found.
    """
    return _iter_genia(Path(path), None if doc_ids is None else Path(doc_ids))


def read_doc_ids(path: Union[str, Path]) -> List[str]:
    """The ids listed in a split file, one per non-blank line, in file order."""
    ids: List[str] = []
    with Path(path).open(encoding="utf8") as file_:
        for line_no, line in enumerate(file_, start=1):
            doc_id = line.strip().lstrip("\ufeff")
            if not doc_id:
                continue
            if len(doc_id.split()) > 1:
                raise FormatError(path, line_no, f"expected one id per line, got {doc_id!r}")
            ids.append(doc_id)
    return ids


def map_sem(sem: Optional[str]) -> Optional[str]:
    """The entity type of a ``sem`` value, or None when it is not a mention."""
    if sem is None:
        return None
    match = _SEM_PATTERN.fullmatch(sem.strip())
    if match is None:
        return None
    return match.group(1) or match.group(2)


def tokenize_genia(text: str, cuts: Iterable[int] = ()) -> List[CharSpan]:
    """Tokenize a GENIA sentence; return the tokens' ``[start, end)`` offsets.

    cuts (Iterable[int]): character offsets where a token must start or end
        (the ``<cons>`` boundaries).
    """
    bounds = sorted({0, len(text), *cuts})
    pieces = [
        (a + match.start(), a + match.end())
        for a, b in zip(bounds, bounds[1:])
        for match in re.finditer(r"\S+", text[a:b])
    ]
    spans: List[CharSpan] = []
    for i, (start, end) in enumerate(pieces):
        for token in _split_piece(text[start:end], final=i == len(pieces) - 1):
            spans.append((start, start + len(token)))
            start += len(token)
    return spans


def _iter_genia(path: Path, doc_ids: Optional[Path]) -> Iterator[NestedSentence]:
    articles = _read_articles(input_files(path, ("*.xml",)))
    if doc_ids is not None:
        articles = _select(articles, read_doc_ids(doc_ids), doc_ids)
    n_sentences = 0
    for article in articles:
        for sentence in _article_sentences(article):
            n_sentences += 1
            yield sentence
    if not n_sentences:
        where = "" if doc_ids is None else f" in the articles listed in {doc_ids}"
        raise FormatError(path, None, f"{NO_SENTENCES}{where}")


def _read_articles(files: Sequence[Path]) -> List[_Article]:
    """Every article of the files; a repeated id keeps its first position."""
    by_id: Dict[str, _Article] = {}
    for path in files:
        for article in _parse_file(path):
            previous = by_id.get(article.doc_id)
            if previous is not None:
                warnings.warn(
                    f"{article.path}:{article.line}: duplicate article {article.doc_id} "
                    f"(also at {previous.path}:{previous.line}); using this later one",
                    FormatWarning,
                )
            by_id[article.doc_id] = article
    return list(by_id.values())


def _select(articles: List[_Article], ids: List[str], ids_path: Path) -> List[_Article]:
    wanted = set(ids)
    found = {article.doc_id for article in articles}
    missing = [doc_id for doc_id in dict.fromkeys(ids) if doc_id not in found]
    if missing:
        listed = ", ".join(missing[:_MAX_LISTED]) + (", ..." if len(missing) > _MAX_LISTED else "")
        warnings.warn(
            f"{ids_path}: {len(missing)} of {len(wanted)} listed ids are not in the XML "
            f"({listed})",
            FormatWarning,
        )
    return [article for article in articles if article.doc_id in wanted]


def _parse_file(path: Path) -> List[_Article]:
    root = _parse_xml(path)
    articles: List[_Article] = []
    for element in root.iter("article"):
        line = getattr(element, "line", 0)
        doc_id = (element.findtext("articleinfo/bibliomisc") or "").strip()
        if not doc_id:
            raise FormatError(path, line, "<article> has no <articleinfo><bibliomisc> id")
        articles.append(_Article(doc_id, path, line, element))
    if not articles:
        raise FormatError(path, None, f"{NO_SENTENCES} (no <article>)")
    return articles


def _parse_xml(path: Path) -> ET.Element:
    """Parse a whole file; every element records the line of its start tag."""
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder(element_factory=_LineElement)

    def start(tag: str, attrs: Dict[str, str]) -> None:
        element = cast(_LineElement, builder.start(tag, attrs))  # made by element_factory
        element.line = parser.CurrentLineNumber

    def skipped_entity(name: str, is_parameter_entity: bool) -> None:
        # The DTD is never loaded, so expat skips undefined entities silently.
        raise FormatError(path, parser.CurrentLineNumber, f"undefined entity &{name};")

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.SkippedEntityHandler = skipped_entity
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        with path.open("rb") as file_:
            parser.ParseFile(file_)
    except expat.ExpatError as err:
        message = f"malformed XML: {expat.ErrorString(err.code)} (column {err.offset + 1})"
        raise FormatError(path, err.lineno, message) from None
    return builder.close()


def _article_sentences(article: _Article) -> Iterator[NestedSentence]:
    for i, element in enumerate(article.element.iter("sentence")):
        sent_id = f"{article.doc_id}-{i}"
        line = getattr(element, "line", 0)
        sentence = _parse_sentence(element, article.path)
        if sentence is None:
            warnings.warn(f"{article.path}:{line}: skipped empty sentence {sent_id}", FormatWarning)
            continue
        sentence.doc_id, sentence.sent_id = article.doc_id, sent_id
        yield sentence


def _parse_sentence(element: ET.Element, path: Path) -> Optional[NestedSentence]:
    """Tokens and mentions of one ``<sentence>``; None when it has no token."""
    chunks: List[str] = []
    cons: List[Tuple[ET.Element, int, int]] = []
    _flatten(element, chunks, cons)
    text = "".join(chunks)
    cuts = [offset for _, start, end in cons for offset in (start, end)]
    token_spans = tokenize_genia(text, cuts)
    if not token_spans:
        return None
    starts = {start: i for i, (start, _) in enumerate(token_spans)}
    ends = {end: i + 1 for i, (_, end) in enumerate(token_spans)}
    spans: List[LabeledSpan] = []
    for cons_element, start, end in cons:
        label = map_sem(cons_element.get("sem"))
        if label is None:
            continue
        span = _token_span(text, start, end, starts, ends)
        if span is None:
            line = getattr(cons_element, "line", 0)
            warnings.warn(f"{path}:{line}: skipped a {label} <cons> without text", FormatWarning)
            continue
        spans.append((span[0], span[1], label))
    tokens = [text[start:end] for start, end in token_spans]
    return NestedSentence(tokens=tokens, spans=list(dict.fromkeys(spans)))


def _flatten(
    element: ET.Element, chunks: List[str], cons: List[Tuple[ET.Element, int, int]]
) -> None:
    """Append the element's text to `chunks` and each ``<cons>``'s char span to
    `cons`, inner before outer (in the order of the end tags)."""
    if element.text:
        chunks.append(element.text)
    for child in element:
        start = sum(map(len, chunks))
        _flatten(child, chunks, cons)
        if child.tag == "cons":
            cons.append((child, start, sum(map(len, chunks))))
        if child.tail:
            chunks.append(child.tail)


def _token_span(
    text: str, start: int, end: int, starts: Dict[int, int], ends: Dict[int, int]
) -> Optional[Tuple[int, int]]:
    """The token offsets of the characters ``text[start:end]`` (cut on both sides)."""
    inner = text[start:end]
    start += len(inner) - len(inner.lstrip())
    end -= len(inner) - len(inner.rstrip())
    if start >= end:
        return None
    return starts[start], ends[end]


def _split_piece(piece: str, final: bool) -> List[str]:
    """Split one whitespace-free piece; `final` if it ends the sentence."""
    parts = [part for part in _SEPARATE.split(piece) if part]
    words = [i for i, part in enumerate(parts) if not _SEPARATE.fullmatch(part)]
    last_word = words[-1] if words else -1
    tokens: List[str] = []
    for i, part in enumerate(parts):
        if _SEPARATE.fullmatch(part):
            tokens.append(part)
        else:
            tokens.extend(_split_word(part, final and i == last_word))
    return tokens


def _split_word(word: str, final: bool) -> List[str]:
    """Split leading and trailing punctuation off a word (see the module doc)."""
    head: List[str] = []
    tail: List[str] = []
    while word:
        first = word[0]
        if first in _LEADING or (first == "'" and word.lower() != "'s"):
            head.append(first)
            word = word[1:]
        elif first == "(":
            close = _matching_close(word)
            if close in (-1, len(word) - 1):
                head.append(first)
                word = word[1:]
            elif word[close + 1] == "-":
                head.extend(["(", *_split_word(word[1:close], False), ")"])
                word = word[close + 1 :]
            else:
                break
        elif first == "[" and _matching_close(word) == -1:
            head.append(first)
            word = word[1:]
        else:
            break
    while word:
        last = word[-1]
        cut = 0
        if last in _TRAILING or (last == "." and final):
            cut = 1
        elif len(word) > 2 and word[-2:].lower() == "'s":
            cut = 2
        elif len(word) > 3 and word[-3:].lower() == "n't":
            cut = 3
        elif last == "'" and len(word) > 1 and word[-2].islower():
            cut = 1
        elif last == "]" and _matching_open(word) == -1:
            cut = 1
        elif last == ")":
            open_ = _matching_open(word)
            if open_ > 0:
                tail[:0] = ["(", *_split_word(word[open_ + 1 : -1], False), ")"]
                word = word[:open_]
                continue
            cut = 1
        if not cut:
            break
        tail.insert(0, word[-cut:])
        word = word[:-cut]
    return head + ([word] if word else []) + tail


def _matching_close(word: str) -> int:
    """The index of the bracket closing ``word[0]``, or -1."""
    opener, closer = word[0], {"(": ")", "[": "]"}[word[0]]
    depth = 0
    for i, char in enumerate(word):
        depth += (char == opener) - (char == closer)
        if depth == 0:
            return i
    return -1


def _matching_open(word: str) -> int:
    """The index of the bracket opening ``word[-1]``, or -1."""
    closer, opener = word[-1], {")": "(", "]": "["}[word[-1]]
    depth = 0
    for i in range(len(word) - 1, -1, -1):
        depth += (word[i] == closer) - (word[i] == opener)
        if depth == 0:
            return i
    return -1
