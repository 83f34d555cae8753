"""Raw text: how a tokenizer and a trained pipeline do on GENIA dev turned back into running text.

GENIA ships pre-tokenized sentences (``IL-2 gene expression requires NF-kappa B ( NFAT ) .``).
`detokenize` joins the tokens as running text: no space before ``. , ; : ) ] } % ? !`` and ``'s``,
none after ``( [ {``, quotes attached inside (``"`` and a lone ``'`` alternate open and close), one
space elsewhere (``IL-2 gene expression requires NF-kappa B (NFAT).``). It also returns each
token's character offsets, so every gold entity has character offsets in the raw text.

Tokenizer figures (no model needed), for each ``--tokenizer``:

* boundaries kept: the share of gold entities whose start and end character offsets are both token
  boundaries of the tokenizer's output (an entity that is not cannot be predicted exactly);
* tokens identical: the share of gold tokens that the tokenizer returns with the same offsets.

With ``--model``, the pipeline's F1 on dev by character offsets, twice: on the gold tokens (a Doc
built from them) and on the raw text through the pipeline's own tokenizer (or ``--model-tokenizer``).
Predicted spans are mapped to character offsets and compared with the gold ones (exact start, end
and label).

    python bench/raw_text.py                                         # tokenizer figures
    python bench/raw_text.py --model training/genia/cpu/locate_label/model-best
    python bench/raw_text.py --show 20                               # the first misses, to iterate

The GENIA test split is held out: iterate the rules on dev (or train) only.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spacy_nested.registrations  # noqa: E402,F401  (the registered tokenizers)
from spacy_nested.corpora.formats import read_jsonl  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "genia" / "dev.jsonl"
TOKENIZERS = {
    "biomedical": "spacy_nested.BiomedicalTokenizer.v1",
    "whitespace": "spacy_nested.WhitespaceTokenizer.v1",
    "english": "spacy.Tokenizer.v1",
}
NO_SPACE_BEFORE = {".", ",", ";", ":", ")", "]", "}", "%", "?", "!", "'s"}
NO_SPACE_AFTER = {"(", "[", "{"}
QUOTES = {'"', "'"}

CharSpan = Tuple[int, int]
CharEntity = Tuple[int, int, str]


class Sentence:
    """A gold sentence as raw text: its text, its tokens' offsets and its entities' offsets."""

    def __init__(self, tokens: Sequence[str], spans: Iterable[Tuple[int, int, str]]) -> None:
        self.tokens = list(tokens)
        self.text, self.offsets, self.spaces = detokenize(self.tokens)
        self.entities: List[CharEntity] = [
            (self.offsets[start][0], self.offsets[end - 1][1], label) for start, end, label in spans
        ]


def detokenize(tokens: Sequence[str]) -> Tuple[str, List[CharSpan], List[bool]]:
    """Running text from tokens: the text, each token's (start, end) offsets, and its trailing space."""
    spaces = [True] * len(tokens)
    open_quote = {quote: False for quote in QUOTES}
    for i, token in enumerate(tokens):
        attach_left = token in NO_SPACE_BEFORE
        if token in QUOTES:
            attach_left = open_quote[token]  # a closing quote
            if not open_quote[token]:
                spaces[i] = False  # an opening quote
            open_quote[token] = not open_quote[token]
        if token in NO_SPACE_AFTER:
            spaces[i] = False
        if attach_left and i > 0:
            spaces[i - 1] = False
    if tokens:
        spaces[-1] = False
    pieces: List[str] = []
    offsets: List[CharSpan] = []
    position = 0
    for token, space in zip(tokens, spaces):
        offsets.append((position, position + len(token)))
        pieces.append(token + (" " if space else ""))
        position += len(token) + int(space)
    return "".join(pieces), offsets, spaces


def load_sentences(path: Path, limit: int = 0) -> List[Sentence]:
    """The sentences of a JSON-lines corpus (tokens containing whitespace split, as `convert --split-tokens`)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = list(read_jsonl(path, split_tokens=True))
    records = records[:limit] if limit > 0 else records
    return [Sentence(record.tokens, record.spans) for record in records]


def make_tokenizer(name: str, nlp: Optional[Language] = None):
    """A tokenizer by its short name (TOKENIZERS) or registered name, built for `nlp` (blank English)."""
    nlp = nlp if nlp is not None else spacy.blank("en")
    if name == "english":
        return spacy.blank("en").tokenizer
    return registry.tokenizers.get(TOKENIZERS.get(name, name))()(nlp)


def token_boundaries(doc: Doc) -> Tuple[Set[int], Set[int], Set[CharSpan]]:
    """Token start offsets, end offsets, and (start, end) pairs of the non-space tokens of `doc`."""
    tokens = [(t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]
    return {s for s, _ in tokens}, {e for _, e in tokens}, set(tokens)


def tokenizer_figures(tokenizer, sentences: Sequence[Sentence], show: int = 0) -> Dict[str, float]:
    """Boundaries kept and tokens identical (percentages) of `tokenizer` on the sentences' raw text."""
    n_entities = kept = n_tokens = identical = 0
    shown = 0
    for sentence in sentences:
        doc = tokenizer(sentence.text)
        assert doc.text == sentence.text
        starts, ends, pairs = token_boundaries(doc)
        for start, end, label in sentence.entities:
            n_entities += 1
            ok = start in starts and end in ends
            kept += ok
            if not ok and shown < show:
                shown += 1
                print(f"  entity {sentence.text[start:end]!r} ({label}) in: {[t.text for t in doc]}")
        n_tokens += len(sentence.offsets)
        same = [offset in pairs for offset in sentence.offsets]
        identical += sum(same)
        if show and not all(same) and shown < show:
            shown += 1
            gold = [t for t, ok in zip(sentence.tokens, same) if not ok]
            print(f"  tokens {gold} in: {sentence.text!r} -> {[t.text for t in doc]}")
    return {
        "boundaries_kept": 100.0 * kept / max(n_entities, 1),
        "tokens_identical": 100.0 * identical / max(n_tokens, 1),
        "n_entities": n_entities,
        "n_tokens": n_tokens,
    }


def doc_entities(doc: Doc, spans_key: str) -> Set[CharEntity]:
    return {(span.start_char, span.end_char, span.label_) for span in doc.spans.get(spans_key, [])}


def f1(gold: Sequence[Set[CharEntity]], pred: Sequence[Set[CharEntity]]) -> Dict[str, float]:
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    n_gold = sum(len(g) for g in gold)
    n_pred = sum(len(p) for p in pred)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"p": 100 * precision, "r": 100 * recall, "f": 100 * f, "n_gold": n_gold, "n_pred": n_pred}


def model_figures(
    nlp: Language, sentences: Sequence[Sentence], spans_key: str, batch_size: int
) -> Dict[str, Dict[str, float]]:
    """F1 by character offsets on the gold tokens and on the raw text through `nlp`'s tokenizer."""
    gold = [set(sentence.entities) for sentence in sentences]
    token_docs = [Doc(nlp.vocab, words=s.tokens, spaces=s.spaces) for s in sentences]
    results = {}
    for name, inputs in (("gold_tokens", token_docs), ("raw_text", [s.text for s in sentences])):
        start = time.perf_counter()
        pred = [doc_entities(doc, spans_key) for doc in nlp.pipe(inputs, batch_size=batch_size)]
        results[name] = {**f1(gold, pred), "seconds": time.perf_counter() - start}
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="yhcc JSON lines (default: GENIA dev)")
    parser.add_argument(
        "--tokenizer", action="append", help=f"tokenizers to measure: {', '.join(TOKENIZERS)} or a registered name"
    )
    parser.add_argument("--model", type=Path, help="a trained pipeline to score on gold tokens and on raw text")
    parser.add_argument("--model-tokenizer", help="replace the pipeline's tokenizer with this one for the raw text")
    parser.add_argument("--spans-key", default="nested")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    parser.add_argument("--show", type=int, default=0, help="print the first N misses of each tokenizer")
    parser.add_argument("--output", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)

    sentences = load_sentences(args.data, args.limit)
    print(f"{args.data}: {len(sentences):,} sentences, {sum(len(s.entities) for s in sentences):,} entities")
    results: Dict[str, object] = {"data": str(args.data), "n_sentences": len(sentences)}
    tokenizers = args.tokenizer or list(TOKENIZERS)
    for name in tokenizers:
        figures = tokenizer_figures(make_tokenizer(name), sentences, args.show)
        results[name] = figures
        print(
            f"{name:>12}: boundaries kept {figures['boundaries_kept']:.2f}%, "
            f"tokens identical {figures['tokens_identical']:.2f}%"
        )
    if args.model is not None:
        import spacy_nested  # noqa: F401  (registers the tokenizers and components)

        nlp = spacy.load(args.model)
        if args.model_tokenizer:
            nlp.tokenizer = make_tokenizer(args.model_tokenizer, nlp)
        tokenizer_name = nlp.config["nlp"]["tokenizer"].get("@tokenizers")
        if args.model_tokenizer:
            tokenizer_name = TOKENIZERS.get(args.model_tokenizer, args.model_tokenizer)
        scores = model_figures(nlp, sentences, args.spans_key, args.batch_size)
        results["model"] = {"path": str(args.model), "tokenizer": tokenizer_name, **scores}
        for name, s in scores.items():
            print(f"{name:>12}: P {s['p']:.2f} R {s['r']:.2f} F1 {s['f']:.2f} ({s['seconds']:.0f} s)")
        print(f"raw text - gold tokens: {scores['raw_text']['f'] - scores['gold_tokens']['f']:+.2f} F1 ({tokenizer_name})")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    return results


if __name__ == "__main__":
    main()
