"""The ``data`` step of project.yml (the first of ``all``): where the main job's data comes from.

    python scripts/prepare_data.py --dataset genia --train T --dev D --output-dir corpus/genia [--source auto]

For the dataset ``genia`` it takes the project's assets when they can be fetched
(``fetch_assets``: downloaded once, MD5-checked; already there with the right MD5:
no download): train from the official GENIA 3.02 XML with yhcc's train document
list, dev from yhcc's dev jsonlines. Otherwise (offline, a wrong MD5, another
dataset, ``--source local``) it converts the local files ``--train`` and ``--dev``
as ``python -m spacy_nested convert`` does. Either way it says which data it used,
on the terminal and in ``OUTPUT_DIR/data.json``. Run from the project's folder
(``--project-dir`` names another): the asset dests below are project.yml's.
"""

import hashlib
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, List

import srsly
import typer
from wasabi import msg

from spacy_nested.cli._util import fail
from spacy_nested.cli.convert import InputFormat, convert_corpus

# The project's assets that the main job's GENIA data comes from (dests in project.yml's assets).
GENIA_ARCHIVE = "assets/GENIAcorpus3.02.tgz"
GENIA_TRAIN_IDS = "assets/genia_splits/train.txt"
GENIA_DEV = "assets/genia/dev.jsonl"
GENIA_ASSETS = (GENIA_ARCHIVE, GENIA_TRAIN_IDS, GENIA_DEV)
GENIA_XML_MEMBER = "GENIA_term_3.02/GENIAcorpus3.02.xml"
GENIA_XML = "assets/genia_xml/" + GENIA_XML_MEMBER  # where project.yml's convert-genia-xml unpacks it too
ASSET_DATASETS = ("genia",)  # the datasets the assets hold
DATA_SOURCES = ("auto", "assets", "local")
DATA_RECORD = "data.json"


class AssetError(Exception):
    """An asset could not be fetched or has the wrong MD5."""


def fetch_assets(project_dir: Path, dests: List[str], timeout: float = 60.0) -> Dict[str, Path]:
    """The assets of ``project_dir/project.yml`` with these dests, downloaded where needed.

    An asset already at its dest with the MD5 of project.yml is kept; any
    other is downloaded (urllib: http, https and file URLs) to a temporary
    file, checked and only then moved to its dest.
    RAISES (AssetError): for the first asset that is not in project.yml, cannot
        be downloaded or has another MD5 (a dest that was there stays as it was).
    """
    project = srsly.read_yaml(project_dir / "project.yml")
    assets = {asset["dest"]: asset for asset in project.get("assets", [])}
    paths: Dict[str, Path] = {}
    for dest in dests:
        if dest not in assets or not assets[dest].get("url") or not assets[dest].get("checksum"):
            raise AssetError(f"{dest}: not an asset with a url and a checksum in {project_dir / 'project.yml'}")
        url, checksum = assets[dest]["url"], assets[dest]["checksum"]
        path = project_dir / dest
        if path.is_file() and _md5(path) == checksum:
            msg.good(f"Asset {dest}: there, MD5 checked")
        else:
            _download(url, path, checksum, timeout)
            msg.good(f"Asset {dest}: downloaded from {url}, MD5 checked")
        paths[dest] = path
    return paths


def _download(url: str, path: Path, checksum: str, timeout: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file_:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        file_.write(chunk)
            except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
                raise AssetError(f"{path.name}: cannot download {url}: {err}") from None
        md5 = _md5(Path(tmp_name))
        if md5 != checksum:
            raise AssetError(f"{path.name}: the download from {url} has MD5 {md5}, project.yml says {checksum}")
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file_:
        for chunk in iter(lambda: file_.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


app = typer.Typer(add_completion=False)


@app.command()
def main(
    train_path: Path = typer.Option(..., "--train", help="Local train file or folder: read when the assets are not used"),
    dev_path: Path = typer.Option(..., "--dev", help="Local dev file or folder: read when the assets are not used"),
    output_dir: Path = typer.Option(..., "--output-dir", help="Where train.spacy, dev.spacy and data.json go"),
    dataset: str = typer.Option("genia", "--dataset", help=f"The assets hold {', '.join(ASSET_DATASETS)}"),
    source: str = typer.Option(
        "auto",
        "--source",
        help="auto: the assets for the dataset genia when they can be fetched, else the local files; "
        "assets: the assets or fail; local: the local files",
    ),
    data_format: InputFormat = typer.Option(InputFormat.auto, "--format", help="convert --format of the local files"),
    split_tokens: bool = typer.Option(
        False, "--split-tokens/--no-split-tokens", help="convert --split-tokens for dev (JSON lines)"
    ),
    spans_key: str = typer.Option("nested", "--spans-key"),
    project_dir: Path = typer.Option(Path("."), "--project-dir", help="The folder of project.yml and assets/"),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for a download to answer"),
) -> None:
    """The main job's train and dev DocBins, from the project's assets when they can be fetched, else local files.

    Says which data it used, and writes it to OUTPUT_DIR/data.json.
    """
    if source not in DATA_SOURCES:
        raise typer.BadParameter(f"choose one of {', '.join(DATA_SOURCES)}", param_hint="--source")
    if source == "assets" and dataset not in ASSET_DATASETS:
        fail(f"the project's assets hold {', '.join(ASSET_DATASETS)}, not '{dataset}': use --source local")
    reason = f"--source {source}" if source == "local" else f"the assets hold {', '.join(ASSET_DATASETS)}, not '{dataset}'"
    if source != "local" and dataset in ASSET_DATASETS:
        try:
            assets = fetch_assets(project_dir, list(GENIA_ASSETS), timeout)
        except AssetError as err:
            if source == "assets":
                fail(f"the project's assets cannot be used: {err}")
            reason = f"the project's assets could not be fetched: {err}"
            msg.warn("Falling back to the local files", reason)
        else:
            _convert_genia_assets(project_dir, assets, output_dir, split_tokens, spans_key)
            described = (
                f"the project's assets, MD5-checked: train from the official GENIA 3.02 XML ({GENIA_ARCHIVE}) "
                f"with yhcc's document list ({GENIA_TRAIN_IDS}), dev from yhcc's dev.jsonlines ({GENIA_DEV})"
            )
            _record_data(output_dir, "assets", assets[GENIA_ARCHIVE], assets[GENIA_DEV], described)
            return
    for path in (train_path, dev_path):
        if not path.exists():
            fail(f"{path} not found ({reason}); give the local data with --vars.train_path and --vars.dev_path")
    convert_corpus(train_path, output_dir / "train.spacy", data_format, spans_key=spans_key)
    convert_corpus(dev_path, output_dir / "dev.spacy", data_format, spans_key=spans_key, split_tokens=split_tokens)
    _record_data(output_dir, "local", train_path, dev_path, f"the local files {train_path} and {dev_path} ({reason})")


def _convert_genia_assets(
    project_dir: Path, assets: Dict[str, Path], output_dir: Path, split_tokens: bool, spans_key: str
) -> None:
    """Unpack the XML of the archive (as convert-genia-xml does), convert train from it and dev from the jsonl."""
    xml = project_dir / GENIA_XML
    xml.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(assets[GENIA_ARCHIVE], "r:gz") as archive:
        member = archive.extractfile(GENIA_XML_MEMBER)
        if member is None:
            fail(f"{assets[GENIA_ARCHIVE]} has no file {GENIA_XML_MEMBER}")
        xml.write_bytes(member.read())
    convert_corpus(
        xml, output_dir / "train.spacy", InputFormat.genia_xml, spans_key=spans_key, doc_ids=assets[GENIA_TRAIN_IDS]
    )
    convert_corpus(
        assets[GENIA_DEV], output_dir / "dev.spacy", InputFormat.yhcc, spans_key=spans_key, split_tokens=split_tokens
    )


def _record_data(output_dir: Path, source: str, train: Path, dev: Path, described: str) -> None:
    """Say which data the DocBins hold, on the terminal and in OUTPUT_DIR/data.json."""
    record = {"source": source, "train": str(train), "dev": str(dev), "described": described}
    output_dir.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output_dir / DATA_RECORD, record)
    msg.good(f"Data: {described}", f"Recorded in {output_dir / DATA_RECORD}")


if __name__ == "__main__":
    app()
