"""Repository hygiene: notebooks are committed stripped and follow the anatomy."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_has_parameters(path):
    nb = json.loads(path.read_text())
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    src = "".join(params[0]["source"])
    assert "SMOKE" in src and "SEED" in src, f"{path.name}: parameters cell needs SMOKE and SEED"
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith(f"# {path.name[:2]} - "), f"{path.name}: first cell must be '# NN - Title'"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: committed with outputs (run `make strip`)"
            assert cell.get("execution_count") is None, f"{path.name}: committed with execution counts"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: committed with widget state"
