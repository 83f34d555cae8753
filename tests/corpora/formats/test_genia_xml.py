"""Tests for the GENIA 3.02 XML reader.

The oracle test converts the 60 real train abstracts of
``genia/raw-sample`` and compares them with ``genia/train.jsonl``; the
other tests use small handmade files.
"""

import json
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
import spacy

from spacy_nested.corpora.formats.base import NestedSentence, sentences_to_docs
from spacy_nested.corpora.formats.errors import FormatError, FormatWarning
from spacy_nested.corpora.formats.genia_xml import map_sem, read_genia_xml, tokenize_genia

SAMPLE = Path("genia/raw-sample/GENIAcorpus3.02-sample.xml")
TRAIN = Path("genia/train.jsonl")
MIN_TOKEN_AGREEMENT = 0.95

PROLOGUE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE set SYSTEM "gpml.dtd">\n'
    "<set>\n"
    '<import resource="GENIAontology.daml" prefix="G"></import>\n'
)


def article(doc_id: str, title: str, *abstract: str) -> str:
    sentences = "".join(f"<sentence>{sentence}</sentence>\n" for sentence in abstract)
    return (
        "<article>\n"
        f"<articleinfo>\n<bibliomisc>{doc_id}</bibliomisc>\n</articleinfo>\n"
        f"<title>\n<sentence>{title}</sentence>\n</title>\n"
        f"<abstract>\n{sentences}</abstract>\n"
        "</article>\n"
    )


def write_xml(path: Path, *articles: str) -> Path:
    path.write_text(PROLOGUE + "".join(articles) + "</set>\n", encoding="utf8")
    return path


def read_all(path: Path, doc_ids: Optional[Path] = None) -> List[NestedSentence]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)
        return list(read_genia_xml(path, doc_ids))


def mentions(sentence: NestedSentence) -> List[Tuple[str, str]]:
    return [(" ".join(sentence.tokens[s:e]), label) for s, e, label in sentence.spans]


# --- oracle: the real sample against genia/train.jsonl ---------------------


def char_spans(tokens: List[str], spans) -> Set[Tuple[int, int, str]]:
    """Spans as offsets in the space-free sentence: robust to token splits."""
    offsets = [0]
    for token in tokens:
        offsets.append(offsets[-1] + len(token))
    return {(offsets[start], offsets[end], label) for start, end, label in spans}


@pytest.fixture(scope="module")
def oracle(shared_data: Path) -> Tuple[List[NestedSentence], Dict[str, dict]]:
    sample = shared_data / SAMPLE
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    converted = read_all(sample)
    doc_ids = {sentence.doc_id for sentence in converted}
    gold: Dict[str, dict] = {}
    with (shared_data / TRAIN).open(encoding="utf8") as file_:
        for line in file_:
            record = json.loads(line)
            if record["doc_id"] in doc_ids:
                gold[record["sent_id"]] = record
    return converted, gold


def test_oracle_articles_and_sentences(oracle):
    converted, gold = oracle
    ours = Counter(sentence.doc_id for sentence in converted)
    theirs = Counter(record["doc_id"] for record in gold.values())
    assert len(ours) == 60
    assert ours == theirs  # same articles, same sentence count per article
    assert [s.sent_id for s in converted] == list(gold)  # same ids, same order


def test_oracle_entities_match_exactly(oracle):
    converted, gold = oracle
    mismatches = []
    n_entities = 0
    for sentence in converted:
        record = gold[sentence.sent_id]
        assert "".join(sentence.tokens) == "".join(record["tokens"]), sentence.sent_id
        expected = [(m["start"], m["end"], m["entity_type"]) for m in record["entity_mentions"]]
        ours = char_spans(sentence.tokens, sentence.spans)
        theirs = char_spans(record["tokens"], expected)
        n_entities += len(theirs)
        if ours != theirs or len(sentence.spans) != len(ours):
            mismatches.append((sentence.sent_id, sorted(ours ^ theirs)))
    print(f"entity agreement: {len(converted) - len(mismatches)}/{len(converted)} sentences")
    assert not mismatches, mismatches[:5]
    assert n_entities > 1500


def test_oracle_token_agreement(oracle):
    converted, gold = oracle
    same = sum(sentence.tokens == gold[sentence.sent_id]["tokens"] for sentence in converted)
    rate = same / len(converted)
    print(f"token agreement: {same}/{len(converted)} sentences = {rate:.2%}")
    assert rate >= MIN_TOKEN_AGREEMENT, f"token agreement {rate:.2%}"


def test_oracle_doc_ids_keep_xml_order(oracle, shared_data: Path, tmp_path: Path):
    converted, _ = oracle
    order = list(dict.fromkeys(sentence.doc_id for sentence in converted))
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{order[5]}\n\n{order[1]}\n", encoding="utf8")
    selected = read_all(shared_data / SAMPLE, ids)
    assert list(dict.fromkeys(s.doc_id for s in selected)) == [order[1], order[5]]
    assert selected == [s for s in converted if s.doc_id in (order[1], order[5])]


def test_oracle_sentences_make_docs(oracle):
    converted, _ = oracle
    sentences = converted[:20]
    docs = list(sentences_to_docs(sentences, spacy.blank("en").vocab, group_by="doc_id"))
    assert sum(len(doc.spans["nested"]) for doc in docs) == sum(len(s.spans) for s in sentences)


# --- handmade files ---------------------------------------------------------

NESTED = (
    '<cons lex="IL-2_gene_expression" sem="G#other_name">'
    '<cons lex="IL-2_gene" sem="G#DNA_domain_or_region">'
    '<cons lex="IL-2" sem="G#protein_molecule">IL-2</cons> gene</cons> expression</cons>'
    ' through <cons lex="CD28" sem="G#protein_molecule">CD28</cons>.'
)
COORDINATED = (
    "Production of "
    '<cons lex="(AND human_IL-2 human_IL-4)" sem="(AND G#protein_molecule G#protein_molecule)">'
    '<cons lex="human_IL*"><cons lex="human" sem="G#multi_cell">human</cons> '
    '<cons lex="IL" sem="G#protein_family_or_group">IL</cons></cons>'
    '<cons lex="*-2">-2</cons> and <cons lex="*-4">-4</cons></cons>'
    ' in <cons lex="(OR CD4+_T_cell CD8+_T_cell)" sem="(OR G#cell_type G#cell_type)">'
    '<cons lex="CD4+*"><cons lex="CD4" sem="G#protein_molecule">CD4</cons>+</cons> or '
    '<cons lex="CD8+*">CD8+</cons> <cons lex="*T_cell">T cells</cons></cons>.'
)
OTHER_TYPES = (
    '<cons lex="PMA" sem="G#lipid">PMA</cons> activates '
    '<cons lex="CD28-mediated_activation" sem="G#other_name">'
    '<cons lex="CD28" sem="G#protein_molecule">CD28</cons>-mediated activation</cons> in '
    '<cons lex="Jurkat_cell" sem="G#cell_line">Jurkat cells</cons> and '
    '<cons lex="HIV-1" sem="G#virus">HIV-1</cons> '
    '<cons lex="mRNA" sem="G#RNA_molecule">mRNA</cons>.'
)


def test_nested_mentions_and_ids(tmp_path: Path):
    second_sentence = 'A second <cons sem="G#cell_type">T cells</cons>.'
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", NESTED, second_sentence))
    title, second = read_all(path)
    assert title.tokens == ["IL-2", "gene", "expression", "through", "CD28", "."]
    assert title.spans == [(0, 1, "protein"), (0, 2, "DNA"), (4, 5, "protein")]  # inner first
    assert (title.doc_id, title.sent_id) == ("MEDLINE:1", "MEDLINE:1-0")
    assert (second.sent_id, mentions(second)) == ("MEDLINE:1-1", [("T cells", "cell_type")])


def test_coordinated_mentions_dropped_inner_kept(tmp_path: Path):
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", COORDINATED))
    (sentence,) = read_all(path)
    assert sentence.tokens == [
        "Production", "of", "human", "IL", "-2", "and", "-4",
        "in", "CD4", "+", "or", "CD8+", "T", "cells", ".",
    ]  # fmt: skip
    assert mentions(sentence) == [("IL", "protein"), ("CD4", "protein")]


def test_non_target_types_ignored(tmp_path: Path):
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", OTHER_TYPES))
    (sentence,) = read_all(path)
    assert sentence.tokens[:6] == ["PMA", "activates", "CD28", "-mediated", "activation", "in"]
    assert mentions(sentence) == [
        ("CD28", "protein"),
        ("Jurkat cells", "cell_line"),
        ("mRNA", "RNA"),
    ]


def test_duplicate_mentions_and_star_in_lex(tmp_path: Path):
    title = (
        '<cons lex="NF-kappa_B" sem="G#protein_complex">'
        '<cons lex="NF-kappa_B" sem="G#protein_molecule">NF-kappa B</cons></cons> binds the '
        '<cons lex="silent_FY*B_allele" sem="G#DNA_domain_or_region">silent FY*B allele</cons>'
    )
    (sentence,) = read_all(write_xml(tmp_path / "a.xml", article("MEDLINE:1", title)))
    assert sentence.spans == [(0, 2, "protein"), (4, 7, "DNA")]


def test_doc_ids_filter_in_xml_order(tmp_path: Path):
    path = write_xml(
        tmp_path / "a.xml",
        article("MEDLINE:1", "One."),
        article("MEDLINE:2", "Two."),
        article("MEDLINE:3", "Three."),
    )
    ids = tmp_path / "train.txt"
    ids.write_text("MEDLINE:3\nMEDLINE:1\nMEDLINE:99\nMEDLINE:98\n", encoding="utf8")
    missing = r"2 of 4 listed ids are not in the XML \(MEDLINE:99, MEDLINE:98\)"
    with pytest.warns(FormatWarning, match=missing):
        sentences = list(read_genia_xml(path, ids))
    assert [s.sent_id for s in sentences] == ["MEDLINE:1-0", "MEDLINE:3-0"]


def test_doc_ids_file_one_id_per_line(tmp_path: Path):
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", "One."))
    ids = tmp_path / "ids.txt"
    ids.write_text("MEDLINE:1\n{\"tokens\": [], \"doc_id\": 1}\n", encoding="utf8")
    with pytest.raises(FormatError, match=r"ids\.txt:2: expected one id per line"):
        list(read_genia_xml(path, ids))


def test_duplicate_article_later_wins(tmp_path: Path):
    path = write_xml(
        tmp_path / "a.xml",
        article("MEDLINE:1", "Old title."),
        article("MEDLINE:2", "Two."),
        article("MEDLINE:1", "New title.", "New abstract."),
    )
    with pytest.warns(FormatWarning, match=r"duplicate article MEDLINE:1"):
        sentences = list(read_genia_xml(path))
    assert [(s.sent_id, s.tokens[0]) for s in sentences] == [
        ("MEDLINE:1-0", "New"),
        ("MEDLINE:1-1", "New"),
        ("MEDLINE:2-0", "Two"),
    ]


def test_directory_of_files(tmp_path: Path):
    write_xml(tmp_path / "b.xml", article("MEDLINE:2", "Two."))
    write_xml(tmp_path / "a.xml", article("MEDLINE:1", "One."))
    (tmp_path / "notes.txt").write_text("not xml", encoding="utf8")
    assert [s.doc_id for s in read_all(tmp_path)] == ["MEDLINE:1", "MEDLINE:2"]


def test_empty_directory(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"no \*\.xml files"):
        list(read_genia_xml(tmp_path))


def test_no_sentences(tmp_path: Path):
    empty = write_xml(tmp_path / "empty.xml")
    with pytest.raises(FormatError) as info:
        read_all(empty)
    assert (info.value.line_no, str(info.value)) == (
        None,
        f"{empty}: no sentences found (no <article>)",
    )
    blank = write_xml(tmp_path / "blank.xml", article("MEDLINE:1", " "))
    with pytest.raises(FormatError, match=f"^{re.escape(str(blank))}: no sentences found$"):
        with pytest.warns(FormatWarning, match="skipped empty sentence"):
            list(read_genia_xml(blank))
    one = write_xml(tmp_path / "one.xml", article("MEDLINE:1", "One."))
    ids = tmp_path / "ids.txt"
    ids.write_text("MEDLINE:2\n", encoding="utf8")
    message = f"{one}: no sentences found in the articles listed in {ids}"
    with pytest.raises(FormatError, match=f"^{re.escape(message)}$"):
        with pytest.warns(FormatWarning, match="1 of 1 listed ids are not in the XML"):
            list(read_genia_xml(one, ids))


def test_malformed_xml_names_file_and_line(tmp_path: Path):
    path = tmp_path / "broken.xml"
    title = "<cons sem='G#cell_type'>T cells</sentence>"  # </cons> missing
    text = PROLOGUE + article("MEDLINE:1", title) + "</set>\n"
    path.write_text(text, encoding="utf8")
    with pytest.raises(FormatError) as info:
        list(read_genia_xml(path))
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "T cells" in row)
    assert info.value.line_no == line
    assert str(info.value).startswith(f"{path}:{line}: malformed XML: mismatched tag")


def test_undefined_entity(tmp_path: Path):
    title = "A &lt; B &alpha; C."
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", title))
    line = path.read_text(encoding="utf8").splitlines().index(f"<sentence>{title}</sentence>")
    with pytest.raises(FormatError, match=rf"a\.xml:{line + 1}: undefined entity &alpha;"):
        list(read_genia_xml(path))


def test_article_without_id(tmp_path: Path):
    path = write_xml(
        tmp_path / "a.xml",
        article("MEDLINE:1", "One."),
        "<article>\n<title><sentence>No id.</sentence></title>\n"
        "<abstract></abstract>\n</article>\n",
    )
    text = path.read_text(encoding="utf8").splitlines()
    line = [i for i, row in enumerate(text, start=1) if row == "<article>"][1]
    message = rf"a\.xml:{line}: <article> has no <articleinfo><bibliomisc> id"
    with pytest.raises(FormatError, match=message):
        list(read_genia_xml(path))


def test_empty_sentence_skipped_keeps_numbering(tmp_path: Path):
    path = write_xml(tmp_path / "a.xml", article("MEDLINE:1", "Title.", " ", "Last."))
    with pytest.warns(FormatWarning, match="skipped empty sentence MEDLINE:1-1"):
        sentences = list(read_genia_xml(path))
    assert [s.sent_id for s in sentences] == ["MEDLINE:1-0", "MEDLINE:1-2"]


# --- the tokenizer and the type mapping ------------------------------------


def tokens(text: str, cuts=()) -> List[str]:
    return [text[start:end] for start, end in tokenize_genia(text, cuts)]


# (text, the expected tokens joined by single spaces)
@pytest.mark.parametrize(
    "text,expected",
    [
        ("IL-2 gene expression.", "IL-2 gene expression ."),
        ("interleukin-2 (IL-2) and p50/p65, PU.1;", "interleukin-2 ( IL-2 ) and p50/p65 , PU.1 ;"),
        ("of t(8;21) and mechanism(s)", "of t ( 8;21 ) and mechanism ( s )"),
        ("1,25(OH)2D3 I(kappa)B CD8(+)-T-cell", "1,25(OH)2D3 I(kappa)B CD8(+)-T-cell"),
        ("interleukin (IL)-1 alpha", "interleukin ( IL ) -1 alpha"),
        ("of [3H]dexamethasone [in]", "of [3H]dexamethasone [in]"),
        ("[see text] 70% and 30%-88", "[ see text ] 70 % and 30%-88"),
        ("G0-->S CTTGG...CCAAG", "G0 -- >S CTTGG ... CCAAG"),
        ("Burkitt's 5' patients' 'lysis'", "Burkitt 's 5' patients ' ' lysis '"),
        ('1. e.g. M. tuberculosis "A" E.', '1. e.g. M. tuberculosis " A " E .'),
        ("ratio 1:10 (n = 3).", "ratio 1 : 10 ( n = 3 ) ."),
    ],
)
def test_tokenizer(text: str, expected: str):
    assert tokens(text) == expected.split(" ")


def test_tokenizer_cuts():
    text = "CD28-mediated (IL-2)-dependent"
    assert tokens(text, [0, 4, 15, 19]) == ["CD28", "-mediated", "(", "IL-2", ")", "-dependent"]
    assert tokens("Lyn-->Ras", [0, 3, 6, 9]) == ["Lyn", "--", ">", "Ras"]
    assert tokens("  a  b ") == ["a", "b"]
    assert tokens("") == []


@pytest.mark.parametrize(
    "sem,label",
    [
        ("G#protein_molecule", "protein"),
        ("G#protein_N/A", "protein"),
        ("G#DNA_domain_or_region", "DNA"),
        ("G#RNA_family_or_group", "RNA"),
        ("G#cell_line", "cell_line"),
        (" G#cell_type ", "cell_type"),
        ("G#cell_component", None),
        ("G#lipid", None),
        ("G#protein", None),
        ("(AND G#protein_molecule G#protein_molecule)", None),
        (None, None),
    ],
)
def test_map_sem(sem, label):
    assert map_sem(sem) == label
