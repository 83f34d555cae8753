"""Write ``configs/*.cfg`` from ``configs/src``: ``python scripts/write_configs.py [--check]``.

Run from the project's folder (beside project.yml); ``--check`` writes nothing and
exits 1 when a config is missing or differs from its sources
(tests/test_config_sources.py fails in that case too).

Every training config is a complete file that ``spacy train`` reads as it is,
but none is edited by hand: each is generated from two sources,

* ``configs/src/base.cfg``: the sections every config shares (common part) and,
  after a ``[@cpu]`` / ``[@trf]`` line, the sections of each encoder (its
  ``[components.tok2vec]`` or ``[components.transformer]``, the listener every
  component gets, the training schedule);
* ``configs/src/<pipeline>.cfg``: the pipeline's components (common part) and
  what each encoder's config changes (``[@cpu]``, ``[@trf]`` parts).

The config of (pipeline, encoder) merges, in this order: base common, base
encoder part, pipeline common, pipeline encoder part. A section seen again adds
its new keys and replaces the keys it repeats. A part may extend a part above
it in the same file: ``[@minilm < trf]`` in base.cfg is base.cfg's ``[@trf]``
part with its own sections merged over it (a second transformer is written as
what differs from the first), and ``[@minilm < cpu]`` in a pipeline's file takes
that file's ``[@cpu]`` settings over to MiniLM.

Why text and not confection: the configs carry comments giving the measured
reason for a value (``# all negative seeds ...: +5 dev F1``), and a
``Config`` round trip (``from_str``/``merge``/``to_str``) drops every comment.
Why not a text template (jinja): the sources would stop being config text and
an encoder's override of one key would need a conditional at that key. So the
sources are config fragments, read line by line into sections and keys, with
each comment attached to the section or key right below it. A comment travels
with its line and an override replaces it together with the line, so a reason
measured for one value cannot end up above another value. The comments at the
start of each part (before its first section) describe the config and are
written at its top, under a header saying the file is generated, from what,
and how to regenerate it. Lines starting with ``##`` are notes about the
sources and are not written.

Placeholders: ``{{components}}`` (the pipeline's components, the
``[components.X]`` sections of its file that have a ``factory``, as list items),
``{{config}}`` (the config's path) and, in a section name, ``{{component}}``:
that section is written once per component (the encoder's listener at
``[components.X.model.tok2vec]``), below the pipeline's own sections.

Sections are written in tree order (each section's subsections right after it,
siblings in order of first appearance), which is also an order confection can
read (a parent before its children).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import typer

from spacy_nested.cli._util import fail

SRC_DIR = Path("configs") / "src"
OUT_DIR = Path("configs")
BASE = "base"
DATASET = "genia"
# The encoder whose configs have no suffix (genia_<pipeline>.cfg); the others are genia_<pipeline>_<encoder>.cfg.
UNSUFFIXED_ENCODER = "trf"
# Extra names: configs/genia.cfg is the command users are given (`spacy train configs/genia.cfg --gpu-id 0`).
ALIASES: Dict[str, Tuple[str, str]] = {"genia.cfg": ("locate_label", "trf")}
COMMAND = "python scripts/write_configs.py"

PART_RE = re.compile(r"^\[@(\w+)(?:\s*<\s*(\w+))?\]$")
SECTION_RE = re.compile(r"^\[([^\]@][^\]]*)\]$")
PLACEHOLDER_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
COMPONENT = "{{component}}"


class ConfigSourceError(ValueError):
    """A source file that cannot be merged (with its file and line)."""


@dataclass
class Entry:
    """A ``key = value`` line (and any indented continuation lines), with the comments above it."""

    key: str
    lines: List[str]
    comments: List[str] = field(default_factory=list)


@dataclass
class Section:
    name: str
    comments: List[str] = field(default_factory=list)
    entries: Dict[str, Entry] = field(default_factory=dict)


@dataclass
class Part:
    """The common part of a source file (encoder None) or one ``[@encoder]`` part."""

    encoder: Optional[str]
    description: List[str] = field(default_factory=list)
    sections: Dict[str, Section] = field(default_factory=dict)
    extends: Optional[str] = None  # [@encoder < extends]: the part of the same file merged in before this one


@dataclass
class Source:
    path: Path
    parts: Dict[Optional[str], Part]

    @property
    def name(self) -> str:
        return self.path.stem

    def part(self, encoder: Optional[str]) -> Part:
        return self.parts.get(encoder, Part(encoder))


def parse_source(path: Path) -> Source:
    """Read a source file into its parts, sections, keys and comments.

    RAISES (ConfigSourceError): a comment that is neither at the start of a
        part nor directly above a section or key (it would be lost), a key
        outside a section, a section or key twice in one part.
    """
    text = path.read_text(encoding="utf8")
    parts: Dict[Optional[str], Part] = {None: Part(None)}
    part = parts[None]
    section: Optional[Section] = None
    entry: Optional[Entry] = None
    pending: List[str] = []

    def fail(lineno: int, message: str) -> ConfigSourceError:
        return ConfigSourceError(f"{path}:{lineno}: {message}")

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("##"):
            continue
        if not stripped:
            if pending:
                if part.sections:
                    raise fail(lineno - 1, "comment not directly above a section or key")
                part.description.extend(pending)  # the part's description
                pending = []
            entry = None
            continue
        if stripped.startswith("#"):
            pending.append(stripped)
            entry = None
            continue
        if line[0].isspace():
            if entry is None or pending:
                raise fail(lineno, "indented line that does not continue a key's value")
            entry.lines.append(line)
            continue
        match = PART_RE.match(stripped)
        if match:
            if pending:
                raise fail(lineno, "comment directly above a [@...] line (leave a blank line)")
            encoder, extends = match.groups()
            if encoder in parts:
                raise fail(lineno, f"a second [@{encoder}] part")
            if extends is not None and extends not in parts:
                raise fail(lineno, f"[@{encoder}] extends [@{extends}], which is not above it")
            part = parts[encoder] = Part(encoder, extends=extends)
            section, entry = None, None
            continue
        match = SECTION_RE.match(stripped)
        if match:
            name = match.group(1).strip()
            if name in part.sections:
                raise fail(lineno, f"section [{name}] twice in one part")
            section = part.sections[name] = Section(name, comments=pending)
            pending, entry = [], None
            continue
        if "=" not in stripped:
            raise fail(lineno, f"neither a section, a key = value nor a comment: {stripped!r}")
        if section is None:
            raise fail(lineno, "key outside a section")
        key = stripped.split("=", 1)[0].strip()
        if key in section.entries:
            raise fail(lineno, f"key {key!r} twice in section [{section.name}]")
        entry = section.entries[key] = Entry(key, [line], comments=pending)
        pending = []
    if pending:
        if part.sections:
            raise fail(len(text.splitlines()), "comment at the end of a part, above nothing")
        part.description.extend(pending)
    return Source(path, parts)


def config_name(pipeline: str, encoder: str) -> str:
    """The file name of the config of `pipeline` with `encoder`."""
    suffix = "" if encoder == UNSUFFIXED_ENCODER else f"_{encoder}"
    return f"{DATASET}_{pipeline}{suffix}.cfg"


def _merge(into: Dict[str, Section], sections: List[Section]) -> None:
    """Merge `sections` into `into`: new keys are added, repeated keys replaced with their comments."""
    for section in sections:
        target = into.setdefault(section.name, Section(section.name))
        if section.comments:
            target.comments = list(section.comments)
        for key, entry in section.entries.items():
            target.entries[key] = Entry(key, list(entry.lines), list(entry.comments))


def _instantiate(section: Section, component: str) -> Section:
    """A {{component}} section for one component."""
    name = section.name.replace(COMPONENT, component)
    entries = {
        key: Entry(key, [line.replace(COMPONENT, component) for line in entry.lines], list(entry.comments))
        for key, entry in section.entries.items()
    }
    return Section(name, list(section.comments), entries)


def _components(pipeline: Source, encoder: str) -> List[str]:
    """The pipeline's components: its [components.X] sections with a factory, in order."""
    names: List[str] = []
    for part in (pipeline.part(None), pipeline.part(encoder)):
        for name, section in part.sections.items():
            parts = name.split(".")
            if len(parts) == 2 and parts[0] == "components" and "factory" in section.entries:
                if parts[1] not in names:
                    names.append(parts[1])
    return names


def _tree_order(names: List[str]) -> List[str]:
    """`names` with each section's subsections right after it (siblings in the given order)."""
    children: Dict[Optional[str], List[str]] = {}
    for name in names:
        parent = name.rsplit(".", 1)[0] if "." in name else None
        if parent is not None and parent not in names:
            raise ConfigSourceError(f"section [{name}] has no parent section [{parent}]")
        children.setdefault(parent, []).append(name)
    ordered: List[str] = []

    def visit(parent: Optional[str]) -> None:
        for child in children.get(parent, []):
            ordered.append(child)
            visit(child)

    visit(None)
    return ordered


def _substitute(line: str, values: Dict[str, str], where: str) -> str:
    def replace(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigSourceError(f"{where}: unknown placeholder {{{{{name}}}}} in {line!r}")
        return values[name]

    return PLACEHOLDER_RE.sub(replace, line)


def render_config(base: Source, pipeline: Source, encoder: str, name: str, note: Tuple[str, ...] = ()) -> str:
    """The text of the config of `pipeline` with `encoder`, written as configs/`name`."""
    if encoder not in base.parts or encoder is None:
        raise ConfigSourceError(f"{base.path}: no [@{encoder}] part")
    components = _components(pipeline, encoder)
    base_layers = [base.part(None), *_chain(base, encoder)]
    pipeline_layers = [pipeline.part(None), *_chain(pipeline, encoder)]
    templates = [s for layer in base_layers for s in layer.sections.values() if COMPONENT in s.name]
    merged: Dict[str, Section] = {}
    for layer in base_layers:
        _merge(merged, [s for s in layer.sections.values() if COMPONENT not in s.name])
    # the listeners, before the pipeline's overrides of them
    _merge(merged, [_instantiate(s, c) for c in components for s in templates])
    for layer in pipeline_layers:
        if any(COMPONENT in s for s in layer.sections):
            raise ConfigSourceError(f"{pipeline.path}: {COMPONENT} sections belong in {base.path.name}")
        _merge(merged, list(layer.sections.values()))
    # the order sections first appear in, with the listeners after the pipeline's own sections
    first_seen = [s for layer in base_layers for s in layer.sections if COMPONENT not in s]
    first_seen += [s for layer in pipeline_layers for s in layer.sections]
    first_seen += [_instantiate(s, c).name for c in components for s in templates]
    order = _tree_order(list(dict.fromkeys(first_seen)))

    path = f"{OUT_DIR.as_posix()}/{name}"
    values = {"components": ", ".join(json.dumps(c) for c in components), "config": path}
    lines = [
        f"# GENERATED by `{COMMAND}` from {_src_path(base)} and",
        f"# {_src_path(pipeline)} (common sections, then [@{encoder}] sections). Do not edit: edit the",
        "# sources and rerun the command (tests/test_config_sources.py fails while this file is stale).",
        *note,
        "#",
    ]
    for layer in (pipeline.part(None), base.part(None), base.part(encoder), pipeline.part(encoder)):
        lines.extend(layer.description)
    out = [_substitute(line, values, path) for line in lines]
    for section_name in order:
        section = merged[section_name]
        out.append("")
        out.extend(section.comments)
        out.append(f"[{section_name}]")
        for entry in section.entries.values():
            out.extend(entry.comments)
            out.extend(_substitute(line, values, f"{path} [{section_name}]") for line in entry.lines)
    return "\n".join(out) + "\n"


def _chain(source: Source, encoder: str) -> List[Part]:
    """The part of `encoder` in `source`, after the parts of that file it extends (the farthest first)."""
    chain = [source.part(encoder)]
    while chain[0].extends is not None:
        chain.insert(0, source.part(chain[0].extends))
    return chain


def _src_path(source: Source) -> str:
    return f"{SRC_DIR.as_posix()}/{source.path.name}"


def generate_configs(src_dir: Path = SRC_DIR) -> Dict[str, str]:
    """Every config's file name and text, from the sources in `src_dir`."""
    base = parse_source(src_dir / f"{BASE}.cfg")
    encoders = [encoder for encoder in base.parts if encoder is not None]
    pipelines = [parse_source(p) for p in sorted(src_dir.glob("*.cfg")) if p.stem != BASE]
    configs: Dict[str, str] = {}
    for pipeline in pipelines:
        unknown = sorted(set(e for e in pipeline.parts if e is not None) - set(encoders))
        if unknown:
            raise ConfigSourceError(f"{pipeline.path}: parts {unknown} name no encoder of {base.path}")
        for encoder in encoders:
            name = config_name(pipeline.name, encoder)
            configs[name] = render_config(base, pipeline, encoder, name)
    by_name = {p.name: p for p in pipelines}
    for alias, (pipeline_name, encoder) in ALIASES.items():
        original = config_name(pipeline_name, encoder)
        if original not in configs:  # other sources (tests); configs/ would then hold a config not generated
            continue
        note = (
            f"# configs/{alias} holds the same config as configs/{original} ({pipeline_name}, {encoder}),",
            f"# under the name of the command users are given: `spacy train configs/{alias} --gpu-id 0`.",
        )
        configs[alias] = render_config(base, by_name[pipeline_name], encoder, alias, note)
    return dict(sorted(configs.items()))


def write_configs(out_dir: Path = OUT_DIR, src_dir: Path = SRC_DIR) -> List[Path]:
    """Write every config generated from `src_dir` into `out_dir`; return their paths.

    Files of `out_dir` that no source generates are left alone.
    """
    configs = generate_configs(src_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in configs.items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf8") != text:
            path.write_text(text, encoding="utf8")
        paths.append(path)
    return paths


def stale_configs(out_dir: Path = OUT_DIR, src_dir: Path = SRC_DIR) -> List[str]:
    """The names of the configs in `out_dir` that are missing or differ from their sources."""
    stale = []
    for name, text in generate_configs(src_dir).items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf8") != text:
            stale.append(name)
    return stale


app = typer.Typer(add_completion=False)


@app.command()
def main(
    out_dir: Path = typer.Option(OUT_DIR, "--out-dir", help="Where the configs go", file_okay=False),
    src_dir: Path = typer.Option(
        SRC_DIR, "--src-dir", help="base.cfg and one <pipeline>.cfg per pipeline", exists=True, file_okay=False
    ),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if a config is missing or differs from its sources"
    ),
) -> None:
    """Write configs/*.cfg from configs/src (base.cfg and one file per pipeline)."""
    try:
        if check:
            stale = stale_configs(out_dir, src_dir)
            if stale:
                fail(f"not as generated from {src_dir}: {', '.join(stale)}; run `{COMMAND}`")
            typer.echo(f"{out_dir}: every config is as generated from {src_dir}")
            return
        paths = write_configs(out_dir, src_dir)
    except ConfigSourceError as err:
        fail(str(err))
    typer.echo(f"Wrote {len(paths)} configs to {out_dir}: {', '.join(p.name for p in paths)}")


if __name__ == "__main__":
    app()
