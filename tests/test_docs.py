"""The documentation runs: every example script, and the code blocks of the embedding guide."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
GUIDE = ROOT / "docs" / "embedding.md"


def test_there_is_an_example_per_family():
    from models import FAMILIES

    texts = " ".join(p.read_text() for p in EXAMPLES)
    for family in FAMILIES:
        assert f'"problem": "{family}"' in texts or f'"problem": "{family}"' in texts.replace("'", '"'), family
    for script in EXAMPLES:
        assert script.name in GUIDE.read_text(), f"{script.name} is not listed in docs/embedding.md"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_script_runs(script, tmp_path):
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "optimal" in run.stdout or "feasible" in run.stdout
    assert "Traceback" not in run.stderr


def test_embedding_guide_code_blocks_run_in_order(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) >= 5
    program = tmp_path / "guide.py"
    program.write_text("\n\n".join(blocks))
    run = subprocess.run([sys.executable, str(program)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "'used': True" in run.stdout
