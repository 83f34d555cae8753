"""The README's Quickstart runs as written: copied verbatim, it trains and prints nested spans."""
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def quickstart_blocks() -> list:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf8")
    section = readme.split("## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_quickstart_runs_verbatim_and_prints_scored_nested_spans(tmp_path):
    blocks = quickstart_blocks()
    assert blocks, "the Quickstart has no python block"
    script = tmp_path / "quickstart.py"
    script.write_text("\n".join(blocks), encoding="utf8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.strip()]
    spans = {(int(r[0]), int(r[1]), r[2]) for r in rows}
    assert all(0.0 <= float(r[3]) <= 1.0 for r in rows)
    assert (0, 4, "protein") in spans and (0, 9, "DNA") in spans  # IL-2 inside IL-2 gene
