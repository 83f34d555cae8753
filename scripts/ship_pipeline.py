"""Ship a trained pipeline as an installable spaCy pipeline package (the project's ``ship-fast`` step).

    python scripts/ship_pipeline.py MODEL --name genia_nested_fast --version 0.1.0 --output pipelines/ \\
        [--results bench/results/cpu/<kept>.json] [--speed "<words/s text>"] [--genia-license PATH]

writes ``OUTPUT/<lang>_<name>/`` (``pipelines/en_genia_nested_fast/``): the source folder that
``spacy package`` generates (``spacy.cli.package.package``: setup.py, MANIFEST.in, meta.json,
README.md and the package ``<lang>_<name>/`` holding the pipeline's data), so that after
``pip install pipelines/en_genia_nested_fast`` a user runs ``spacy.load("en_genia_nested_fast")``
or ``python -m spacy_nested annotate en_genia_nested_fast in.txt out.jsonl``. The outer folder has
no version in its name (spaCy's would be ``<lang>_<name>-<version>``): spaCy's setup.py reads the
name and version from meta.json and its paths relative to the folder, so the folder's own name
does not matter, and an install line naming it stays the same across versions.

What it adds to spaCy's package:

- meta.json: ``description``, ``sources`` (the GENIA 3.02 term corpus, its URL and licence),
  ``license`` (the training data's: the GENIA Project License for Annotated Corpora, not the MIT
  licence of spacy-nested's code), ``performance`` (``spans_<key>_p/r/f`` and per type, from
  ``--results``: a kept result JSON of bench/results or a metrics JSON of ``workflow.py
  evaluate``) and ``requirements`` (spaCy infers ``spacy-nested`` from the config's registered
  functions, and the spaCy version range is added);
- LICENSE-GENIA.txt (``--genia-license``), beside setup.py and inside the pipeline's data, so the
  licence text travels with the source folder, the sdist and the installed package;
- a README.md (spaCy's package card, generated from meta) that says what the pipeline was trained
  on, its dev scores, its speed and its limits (domain, language, tokenizer, sentences, output).

The package names no file of the machine that built it: the config's ``[paths]`` (the training
files) are reset to null, and the build stops if any file holds the working directory, the home
directory or the model's path. It is built in a hidden temporary folder inside OUTPUT and moved
into place only when complete (an existing package is replaced all at once, or not at all).
"""

import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import spacy
import srsly
import typer
from spacy.language import Language
from thinc.api import Config
from wasabi import msg

from spacy_nested.cli._util import fail
from spacy_nested.files import replace_folder

app = typer.Typer(
    name="ship_pipeline",
    help="Ship a trained pipeline as an installable spaCy pipeline package (a source folder, no version in its name).",
    no_args_is_help=True,
    add_completion=False,
)

LICENSE_FILE = "LICENSE-GENIA.txt"
GENIA_LICENSE_NAME = "GENIA Project License for Annotated Corpora"
LICENSE = f"{GENIA_LICENSE_NAME} (training data)"
GENIA_URL = "http://www.geniaproject.org/"
SOURCES: List[Dict[str, str]] = [
    {
        "name": "GENIA 3.02 term corpus",
        "url": GENIA_URL,
        "author": "GENIA Project",
        "license": GENIA_LICENSE_NAME,
        "note": (
            f"The {GENIA_LICENSE_NAME} applies: the pipeline was trained on the corpus's annotations "
            f"(Corpus annotations (c) GENIA Project); its text is in {LICENSE_FILE}"
        ),
    }
]
# What the shipped pipeline was trained on (the project's data step: ../shared/data/README.md)
TRAINING_DATA = (
    f"the train split of the GENIA 3.02 term corpus ({GENIA_URL}), as the nested NER literature uses it "
    "(yhcc/CNN_Nested_NER's split): 15,038 sentences of 1,601 MEDLINE abstracts, 46,203 entities "
    "(8,309 of them nested) of 5 types: DNA, RNA, protein, cell_line, cell_type. Dev (yhcc's, 1,765 "
    "sentences) chose the decision threshold and gives the scores below; GENIA's test split was not used"
)
TOKENIZERS: Dict[str, str] = {
    "spacy_nested.BiomedicalTokenizer.v1": (
        "`spacy_nested.BiomedicalTokenizer.v1` cuts running text: spaCy's English tokenizer with rules "
        "adapted to GENIA's tokens (punctuation and brackets split off; hyphenated names, slashes and "
        "formulas stay whole: `IL-2-dependent`, `CD4/CD8`, `Ca2+`). An entity can only start and end at "
        "token boundaries: in `PHA-activated` written without a space, `PHA` cannot be found"
    ),
    "spacy_nested.WhitespaceTokenizer.v1": (
        "`spacy_nested.WhitespaceTokenizer.v1`: it expects pre-tokenized text, GENIA's tokens joined by "
        "single spaces (`( IL-2 ) ,`); on running text, entities next to punctuation are lost"
    ),
    "spacy.Tokenizer.v1": "spaCy's English tokenizer (not GENIA's tokens: some entity boundaries fall inside tokens)",
}
ENCODERS = {"tok2vec": "spaCy's CPU tok2vec", "transformer": "a transformer"}


def package_name(lang: str, name: str) -> str:
    """``<lang>_<name>`` as spaCy names the package (a name already starting with ``<lang>_`` is kept)."""
    return name if name.startswith(f"{lang}_") else f"{lang}_{name}"


def _detector(nlp: Language) -> Tuple[str, Dict[str, Any]]:
    """The component that writes the span group (its name and config): the last with a ``spans_key``."""
    for pipe_name in reversed(nlp.pipe_names):
        config = dict(nlp.get_pipe_config(pipe_name))
        if "spans_key" in config:
            return pipe_name, config
    raise ValueError(f"no component of the pipeline writes a span group (pipes: {nlp.pipe_names})")


def read_results(path: Path) -> Dict[str, Any]:
    """A result JSON (bench/results or a metrics JSON of ``workflow.py evaluate``): its ``overall`` P/R/F,
    ``per_type`` and speed.

    RAISES (ValueError): when it has no overall p, r and f.
    """
    results = srsly.read_json(path)
    overall = results.get("overall") if isinstance(results, dict) else None
    if not isinstance(overall, dict) or not all(isinstance(overall.get(k), (int, float)) for k in "prf"):
        raise ValueError(f"{path}: not a result JSON (no overall p, r and f; see bench/results/)")
    return results


def performance(results: Dict[str, Any], spans_key: str) -> Dict[str, Any]:
    """meta.json's ``performance`` from a result JSON, with spaCy's span scorer's names."""
    prefix = f"spans_{spans_key}"
    overall = results["overall"]
    perf: Dict[str, Any] = {f"{prefix}_{k}": float(overall[k]) for k in "prf"}
    per_type = results.get("per_type") or {}
    perf[f"{prefix}_per_type"] = {label: {k: float(v[k]) for k in "prf"} for label, v in sorted(per_type.items())}
    wps = _words_per_s(results)
    if wps is not None:
        perf["speed"] = round(wps)
    return perf


def _words_per_s(results: Dict[str, Any]) -> Optional[float]:
    """spaCy's benchmark speed when the results have one (``workflow.py benchmark``), else the scoring's."""
    benchmark = results.get("benchmark")
    if isinstance(benchmark, dict) and isinstance(benchmark.get("words_per_s"), (int, float)):
        return float(benchmark["words_per_s"])
    wps = results.get("words_per_s")
    return float(wps) if isinstance(wps, (int, float)) else None


def speed_text(speed: Optional[str], results: Optional[Dict[str, Any]], results_name: str) -> str:
    if speed:
        return speed
    wps = _words_per_s(results) if results else None
    if wps is None:
        return "Not measured for this package."
    how = "spaCy's benchmark speed on dev" if isinstance(results and results.get("benchmark"), dict) else "scoring dev"
    return f"{wps:,.0f} words/s ({how}, from {results_name}; on the machine that measured it, CPU)."


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def readme_notes(
    nlp: Language, meta: Dict[str, Any], results: Optional[Dict[str, Any]], results_name: str, speed: str
) -> str:
    """The sections of the package card after spaCy's table: training data, dev scores, speed, use, limits, licence."""
    pipe_name, config = _detector(nlp)
    key = config["spans_key"]
    name = package_name(meta["lang"], meta["name"])
    lines: List[str] = ["### Training data", "", f"Trained on {TRAINING_DATA}.", "", "### Dev scores", ""]
    if results:
        n_gold = results["overall"].get("n_gold")
        what = f" ({results['n_docs']:,} docs, {n_gold:,} entities)" if results.get("n_docs") and n_gold else ""
        lines += [
            f"Strict (start, end, type) matches on GENIA dev{what}, in %, from {results_name}:",
            "",
            "| type | P | R | F |",
            "|---|---|---|---|",
        ]
        rows = [("all", results["overall"])] + sorted((results.get("per_type") or {}).items())
        lines += [f"| {label} | {_pct(s['p'])} | {_pct(s['r'])} | {_pct(s['f'])} |" for label, s in rows]
    else:
        lines.append("Not given for this package (ship it with `--results`).")
    lines += ["", "### Speed", "", speed, "", "### Use", "", "```python", "import spacy", "", f'nlp = spacy.load("{name}")']
    lines += [
        'doc = nlp("IL-2 gene expression requires NF-kappa B activation in human T cells.")',
        f'for span, score in zip(doc.spans["{key}"], doc.spans["{key}"].attrs["scores"]):',
        "    print(span.start_char, span.end_char, span.label_, round(score, 2), span.text)",
        "```",
        "",
        f"or, for a corpus (a .txt file with a text a line, .jsonl or .spacy): `python -m spacy_nested annotate {name} "
        "in.txt out.jsonl`, one JSON record a text with character offsets, labels and scores.",
        "",
    ]
    tokenizer = nlp.config["nlp"]["tokenizer"].get("@tokenizers", "")
    segmenter = config.get("segmenter") or {}
    window = (
        f"; longer text without sentence starts is read in windows of {segmenter['max_length']} tokens "
        f"overlapping by {segmenter.get('overlap', 0)}"
        if isinstance(segmenter.get("max_length"), int)
        else ""
    )
    threshold = config.get("threshold")
    below = f" (spans scoring under {threshold:.2f} are dropped)" if isinstance(threshold, (int, float)) else ""
    ents = "; `doc.ents` is not set" if config.get("write_ents") is False else ""
    lines += [
        "### Limits",
        "",
        "- **Biomedical abstracts only**: MEDLINE abstracts of GENIA's domain (human blood cells and "
        "transcription factors). Other text (clinical notes, full papers, other domains) will score much lower.",
        "- **English** only.",
        f"- **Tokenization**: {TOKENIZERS.get(tokenizer, f'`{tokenizer}`')}.",
        f"- **Sentences**: trained on single sentences; give it sentences or abstracts{window}.",
        f'- **Output**: nested, possibly overlapping spans in `doc.spans["{key}"]` (component `{pipe_name}`), '
        f'each with a score in [0, 1] in `doc.spans["{key}"].attrs["scores"]`{below}{ents}.',
        "- **Not for clinical use**: a research tool, not validated for diagnosis, treatment or any clinical decision.",
        "",
        "### License",
        "",
        f"The pipeline was trained on the GENIA corpus's annotations, so the {GENIA_LICENSE_NAME} applies to it "
        f"(annotations: Creative Commons Attribution 3.0; attribution: \"Corpus annotations (c) GENIA Project\"). "
        f"Its text travels with the package: {LICENSE_FILE}. The spacy-nested code that runs the pipeline "
        "is a separate package under the MIT licence.",
    ]
    return "\n".join(lines) + "\n"


def _scrub_paths(config_path: Path) -> None:
    """Reset the config's [paths] (the training files) to null, as spaCy's own packages have them."""
    config = Config().from_disk(config_path, interpolate=False)
    for key, value in config.get("paths", {}).items():
        if isinstance(value, str):
            config["paths"][key] = None
    config.to_disk(config_path)


def absolute_paths(folder: Path, needles: Iterable[str]) -> List[str]:
    """``file: path`` for each file under `folder` holding one of the (absolute) paths `needles`."""
    found: List[str] = []
    encoded = sorted({n.encode("utf8") for n in needles if len(n) > 1})
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file.read_bytes()
        found += [f"{file.relative_to(folder)}: {n.decode('utf8')}" for n in encoded if n in data]
    return found


def ship_pipeline(
    model: Path,
    name: str,
    version: str,
    output: Path,
    genia_license: Path,
    results_path: Optional[Path] = None,
    speed: Optional[str] = None,
    description: Optional[str] = None,
) -> Path:
    """Write ``output/<lang>_<name>/``, spaCy's package source folder of `model` with the meta, licence and
    README above; returns it.

    RAISES (ValueError): a folder that is not a pipeline, a bad name, a missing licence file, a
        results file that is not one, spaCy's packaging failing, an absolute path in the package.
    """
    from spacy.cli.package import generate_readme, get_meta, package

    if not (model / "config.cfg").is_file() or not (model / "meta.json").is_file():
        raise ValueError(f"{model}: not a saved pipeline (no config.cfg and meta.json)")
    if not genia_license.is_file():
        raise ValueError(f"{genia_license}: the GENIA licence text is not there (--genia-license)")
    results = read_results(results_path) if results_path else None
    results_name = results_path.name if results_path else ""
    lang = srsly.read_json(model / "meta.json").get("lang", "en")
    name = name[len(lang) + 1 :] if name.startswith(f"{lang}_") else name
    full_name = package_name(lang, name)
    if not full_name.isidentifier():
        raise ValueError(f"'{full_name}' is not a valid module name (ASCII letters, digits and _)")
    output.mkdir(parents=True, exist_ok=True)
    target = output / full_name
    work = Path(tempfile.mkdtemp(prefix=f".{full_name}-", dir=output))
    try:
        data = work / "model"
        shutil.copytree(model, data, ignore=shutil.ignore_patterns("README.md", "__pycache__", ".*"))
        _scrub_paths(data / "config.cfg")
        shutil.copyfile(genia_license, data / LICENSE_FILE)
        nlp = spacy.load(data)
        pipe_name, detector = _detector(nlp)
        encoder = next((ENCODERS[p] for p in nlp.pipe_names if p in ENCODERS), "its own encoder")
        labels = ", ".join(nlp.get_pipe(pipe_name).labels)  # type: ignore[attr-defined]
        meta: Dict[str, Any] = {
            **srsly.read_json(data / "meta.json"),
            "name": name,
            "version": version,
            "description": description
            or (
                f"Nested named entities ({labels}) in English biomedical abstracts: spacy-nested's "
                f"`{pipe_name}` on {encoder}, trained on GENIA 3.02. Writes scored, possibly nested spans "
                f'to `doc.spans["{detector["spans_key"]}"]`.'
            ),
            "author": "spacy-nested",
            "sources": SOURCES,
            "license": LICENSE,
            "performance": performance(results, detector["spans_key"]) if results else {},
        }
        # spaCy's requirements: the packages of the config's registered functions (spacy-nested); `package`
        # adds spaCy's version range (require_parent: asked twice, spaCy would list it twice)
        meta = get_meta(data, meta, require_parent=False)
        if not any(req.startswith("spacy-nested") or req.startswith("spacy_nested") for req in meta["requirements"]):
            meta["requirements"].insert(0, "spacy-nested")  # spaCy found no registered function of it
        notes = readme_notes(nlp, meta, results, results_name, speed_text(speed, results, results_name))
        card = {key: value for key, value in meta.items() if key != "url" or value}  # no link to an empty url
        (data / "README.md").write_text(generate_readme({**card, "notes": notes}), encoding="utf8")
        srsly.write_json(work / "meta.json", meta)
        build = work / "build"
        build.mkdir()
        try:
            package(data, build, meta_path=work / "meta.json", name=name, version=version, create_sdist=False,
                    require_parent=True, silent=True)  # fmt: skip
        except SystemExit as err:  # spaCy's msg.fail
            raise ValueError(f"spacy package failed on {model} (exit {err.code}): see `python -m spacy package`") from err
        built = build / f"{full_name}-{version}"
        inner = built / full_name
        shutil.copyfile(genia_license, built / LICENSE_FILE)
        with (built / "MANIFEST.in").open("a", encoding="utf8") as manifest:
            manifest.write(f"\ninclude {LICENSE_FILE}\n")
        # setup.py copies meta.json there on every build: done here, the folder stays as the build leaves it
        for folder in (inner, inner / f"{full_name}-{version}"):
            shutil.copyfile(built / "meta.json", folder / "meta.json")
        needles = [str(Path.cwd().resolve()), str(Path.home()), str(model.resolve()), str(model.absolute()), str(work)]
        found = absolute_paths(built, needles)
        if found:
            raise ValueError(f"the package would name files of this machine: {'; '.join(found)}")
        spacy.load(inner / f"{full_name}-{version}")  # loads as installed
        replace_folder(built, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def folder_size(folder: Path) -> int:
    """Bytes of the files under `folder` (build outputs of an install excepted)."""
    skip = ("build", "dist")
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and not any(part in skip or part.endswith(".egg-info") for part in p.relative_to(folder).parts)
    )


@app.command()
def ship_pipeline_cli(
    model: Path = typer.Argument(
        ..., help="The trained pipeline folder (model-tuned or model-best)", exists=True, file_okay=False
    ),
    name: str = typer.Option("genia_nested_fast", "--name", help="Package name without the language prefix"),
    version: str = typer.Option("0.1.0", "--version"),
    output: Path = typer.Option(Path("pipelines"), "--output", help="Parent folder of the package folder <lang>_<name>/"),
    results: Optional[Path] = typer.Option(
        None, "--results", help="Dev result JSON (bench/results/cpu/*.json or metrics/.../<pipeline>.json)", dir_okay=False
    ),
    speed: Optional[str] = typer.Option(None, "--speed", help='Speed for the card, as text ("16,000 words/s on 1 CPU core")'),
    genia_license: Path = typer.Option(
        Path("../shared/data/genia/LICENSE-GENIA.txt"), "--genia-license", help="The GENIA licence text to ship"
    ),
    description: Optional[str] = typer.Option(
        None, "--description", help="meta.json's description (default: one made from the pipeline)"
    ),
) -> None:
    """Write OUTPUT/<lang>_<name>/: an installable spaCy pipeline package of MODEL (pip install OUTPUT/<lang>_<name>)."""
    try:
        target = ship_pipeline(model, name, version, output, genia_license, results, speed, description)
    except (ValueError, OSError) as err:
        fail(str(err))
    size = folder_size(target)
    msg.good(
        f"{target.name} {version} in {target} ({size / 1e6:.1f} MB)",
        f"pip install {target} && python -c 'import spacy; spacy.load(\"{target.name}\")'",
    )


if __name__ == "__main__":
    app()
