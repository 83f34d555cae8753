"""A tokenizer for raw biomedical text that follows GENIA's tokenization.

Trained pipelines see the corpus's own tokens in training (the converter's
DocBins hold them). At prediction time, raw text must be cut the same way, or
entity boundaries fall inside tokens: spaCy's English tokenizer splits
``IL-2-dependent`` and ``Ca2+``, the whitespace tokenizer leaves ``(IL-2)``
and ``proliferation.`` whole. `biomedical_tokenizer` is spaCy's English
tokenizer with its rules adapted to the GENIA corpus's conventions:

* Punctuation and brackets around a word split off: ``(IL-2),`` gives
  ``(``, ``IL-2``, ``)``, ``,``; a sentence-final ``.`` splits off after any
  word (``NF-kappa B.``), except after a few abbreviations (``e.g.``, ``al.``).
* Hyphenated names, slashes and formulas stay whole, as GENIA has them:
  ``NF-kappaB``, ``IL-2-dependent``, ``CD4/CD8``, ``Ca2+``, ``CD4+``, ``5'``,
  ``14.7-18.7``, ``alpha,25-dihydroxyvitamin``. So do brackets inside a word:
  ``Ca(2+)``, ``1,25(OH)2D3``, ``(Ca2+)i``, ``[3H]thymidine``.
* ``%`` after a number splits off (``50%`` gives ``50``, ``%``), other units do
  not (``5-min``, ``10kD``).
* Of spaCy's English exceptions, the contractions with an apostrophe stay
  (``don't`` gives ``do``, ``n't``); the emoticons, the apostrophe-less forms
  (``Id`` would give ``I``, ``d``) and abbreviations that are gene names at
  the end of a sentence (``Jun.``, ``Oct.``) are left out.

It is a plain `spacy.tokenizer.Tokenizer`, so it serializes as spaCy's own
(``nlp.to_disk`` writes its rules, ``spacy.load`` reads them back), and it is
registered as ``spacy_nested.BiomedicalTokenizer.v1``::

    [nlp.tokenizer]
    @tokenizers = "spacy_nested.BiomedicalTokenizer.v1"

On GENIA dev turned back into running text (``bench/raw_text.py``, where the
rules were tuned; the test split was never used) it keeps the boundaries of all
4,714 gold entities and 99.99% of the corpus's tokens (train: 100.0%, 99.94%);
spaCy's English tokenizer keeps 99.07% and 95.6%. What it cannot see is the
next word: an initial (``S. cerevisiae``) loses its full stop, as a
sentence-final ``NF-kappa B.`` must. Pre-tokenized corpora keep
`spacy_nested.corpora.tokenizer.WhitespaceTokenizer`.
"""

import re
from typing import Callable, Dict, List, Optional, Pattern, Sequence, Union

from spacy.attrs import ORTH
from spacy.lang.char_classes import ALPHA, LIST_ELLIPSES, LIST_ICONS
from spacy.lang.en import English
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
from spacy.vocab import Vocab

# A word character inside a bracketed piece of a name: neither a bracket nor whitespace.
_IN_BRACKETS = r"[^\s()\[\]{}]"
# What may follow the closing bracket of a piece that belongs to the word: more of the word.
_WORD_CONTINUES = rf"[{ALPHA}0-9+\-'/(\[]"

# An opening bracket splits off unless it closes inside the word and the word goes on after it:
# "(IL-2)" and "(see" split, "(Ca2+)i", "(CT)19/(CA)16" and "[3H]thymidine" stay whole.
_ISOTOPE = r"\[[0-9]{1,3}[A-Z][a-z]?\]"  # an isotope label, a token of its own in GENIA: "[3H]", "[125I]"
_OPEN_BRACKETS = [
    rf"\((?!{_IN_BRACKETS}*\){_WORD_CONTINUES})",
    rf"\[(?!{_IN_BRACKETS}*\]{_WORD_CONTINUES})(?!{_ISOTOPE[2:]})",
    rf"\{{(?!{_IN_BRACKETS}*\}}{_WORD_CONTINUES})",
]

# Whole-token test, applied before each affix split: a word with balanced bracketed pieces inside
# it ("Ca(2+)", "1,25(OH)2D3", "[3H]1,25(OH)2D3", "Na(+)-H(+)-antiport") stays whole once the
# punctuation around it has split off. A token that is one bracketed piece ("(IL-2)") or that ends
# with sentence punctuation does not match, so its brackets and punctuation still split.
_PIECE = r"(?:\([^\s()\[\]]*\)|\[[^\s()\[\]]*\])"
_PLAIN = r"[^\s()\[\]{}\"]"
_TOKEN_MATCH = (
    rf"^{_ISOTOPE}$|"
    rf"^(?=[^\s]*{_PIECE})"  # at least one bracketed piece
    rf"(?!{_PIECE}$)"  # not only a bracketed piece
    rf"(?:{_PLAIN}|{_PIECE})*"
    rf"(?:{_PLAIN}(?<![.,;:!?'])|{_PIECE})$"  # ends with a word character or a piece
)

# Prefix rules of spaCy's English tokenizer replaced here: brackets (above) and "+" (spaCy splits
# "+" off before anything but a digit; GENIA keeps "+/-" and "+33" whole).
_DROPPED_PREFIXES = {r"\(", r"\[", r"\{", r"\+(?![0-9])", "<", ">"}

# Suffix rules of spaCy's English tokenizer replaced here:
# * "+" after a digit ("Ca2+", "CD4+" stay whole);
# * units after a number ("10kD", "5h" stay whole, as GENIA has them); "%" gets its own rule;
# * the apostrophe (a prime after a digit stays: "5'", "E3'");
# * the full stop (rules of their own below).
_DROPPED_SUFFIX_STARTS = (r"(?<=[0-9])\+", r"(?<=[0-9])(?:km", "(?<=[0-9a-z", "(?<=[A-Z")
_DROPPED_SUFFIXES = {r"\'"}
_EXTRA_SUFFIXES = [
    r"(?<=[0-9])%",
    r"(?<![0-9])'",
    # A full stop ends a sentence after any word that is not an abbreviation (exceptions below):
    # "B." and "NF-kappa B." end sentences in GENIA far more often than they are initials.
    # Initials and abbreviations written with inner full stops keep their last one ("V.B.", "U.S.").
    rf"(?<=[{ALPHA}0-9%)\]'\"+\-])(?<!\.[{ALPHA}])\.",
]

# spaCy's infixes split hyphens, slashes, commas and full stops between letters ("IL-2", "CD4/CD8",
# "alpha,25-dihydroxy", "TF.VIIa") and "-" between digits ("14.7-18.7"): GENIA keeps all of these
# whole. What stays: ellipses, icons, a double hyphen used as a dash between words, and an opening
# bracket that does not close inside the word ("p50(NF-kappa B)"; "Ca(2+)" never gets here: the
# whole-token test above keeps it).
_INFIXES = LIST_ELLIPSES + LIST_ICONS + [rf"(?<=[{ALPHA}])--(?=[{ALPHA}])", rf"(?<=[{ALPHA}0-9])\((?=[{ALPHA}0-9])"]

# Abbreviations that keep their full stop: those of GENIA's training and dev splits (i.e., e.g., vs.,
# al., Dr., ca., a.m., p.m., cf., ref.) and a few more of scientific writing.
ABBREVIATIONS = [
    "al.", "approx.", "ca.", "cf.", "e.g.", "i.e.", "etc.", "Fig.", "Figs.", "fig.", "figs.",
    "No.", "no.", "ref.", "refs.", "resp.", "vs.", "viz.", "Dr.", "Prof.", "Ph.D.", "Inc.", "Ltd.",
    "Co.", "Corp.", "St.", "U.S.", "a.m.", "p.m.", "E.g.", "I.e.",
]


def _kept_prefixes() -> List[str]:
    prefixes = [p for p in _english_rules(English.Defaults.prefixes) if p not in _DROPPED_PREFIXES]
    # "<" and ">" split off only when a space or punctuation follows: GENIA keeps "P<0.05", ">90", "G>C".
    return _OPEN_BRACKETS + prefixes + [r"<(?![0-9A-Za-z.])", r">(?![0-9A-Za-z.])"]


def _kept_suffixes() -> List[str]:
    suffixes = [
        s
        for s in _english_rules(English.Defaults.suffixes)
        if s not in _DROPPED_SUFFIXES and not s.startswith(_DROPPED_SUFFIX_STARTS)
    ]
    return suffixes + _EXTRA_SUFFIXES


def _kept_exceptions() -> Dict[str, List[Dict[int, str]]]:
    """spaCy's English exceptions that suit biomedical text, and the abbreviations above."""
    exceptions = {
        text: pieces
        for text, pieces in English.Defaults.tokenizer_exceptions.items()
        if text.isspace() or re.fullmatch(r"[A-Za-z]*['’][A-Za-z'’]*", text) or text in ("cannot", "Cannot")
    }
    for text in ABBREVIATIONS:
        exceptions[text] = [{ORTH: text}]
    return exceptions


def _english_rules(rules: Optional[Sequence[Union[str, Pattern[str]]]]) -> List[str]:
    """spaCy's English affix rules as patterns (all of them are strings)."""
    return [rule if isinstance(rule, str) else rule.pattern for rule in rules or []]


def biomedical_tokenizer(vocab: Vocab) -> Tokenizer:
    """spaCy's English tokenizer with GENIA's conventions (see the module docstring)."""
    return Tokenizer(
        vocab,
        rules=_kept_exceptions(),
        prefix_search=compile_prefix_regex(_kept_prefixes()).search,
        suffix_search=compile_suffix_regex(_kept_suffixes()).search,
        infix_finditer=compile_infix_regex(_INFIXES).finditer,
        token_match=re.compile(_TOKEN_MATCH).match,
        url_match=English.Defaults.url_match,
    )


def create_biomedical_tokenizer() -> Callable[[Language], Tokenizer]:
    """Return the function spaCy calls with the `nlp` object to build the tokenizer."""

    def create_tokenizer(nlp: Language) -> Tokenizer:
        return biomedical_tokenizer(nlp.vocab)

    return create_tokenizer

