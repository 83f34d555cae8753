"""Shared pytest fixtures.

`shared_data` locates the project's data folder: ``$SPACY_NESTED_DATA`` if
set, else ``shared/data`` next to the repository root. Tests that use it are
skipped when it is absent (for example on CI without the data).
"""

import os
from pathlib import Path
from typing import Optional

import pytest

DATA_ENV_VAR = "SPACY_NESTED_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Optional[Path]:
    """The data folder, or None when it does not exist."""
    env = os.environ.get(DATA_ENV_VAR)
    path = Path(env) if env else REPO_ROOT / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = find_shared_data()
    if path is None:
        pytest.skip(f"shared data not found (set {DATA_ENV_VAR} or add ../shared/data)")
    return path
