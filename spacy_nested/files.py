"""Writing a folder all or nothing: what the commands that save pipelines or packages share."""
import shutil
import tempfile
from pathlib import Path
from typing import Optional


def replace_folder(new: Path, target: Path) -> None:
    """Move the folder ``new`` to ``target`` (same file system), replacing a ``target`` there at once or not at all.

    A ``target`` already there is moved aside first and put back if the move fails; it is removed once
    ``new`` is in place.
    """
    old: Optional[Path] = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent)) / target.name
        target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        if old is not None and not target.exists():
            old.rename(target)  # put the previous one back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
