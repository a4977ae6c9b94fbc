"""The layout's import rules hold on lutnb, and the checker catches a planted cycle, a forbidden import and
a private import (see tests/layout_rules.py for the rules)."""
import ast
import shutil
from pathlib import Path

import pytest
from layout_rules import check, cycles, graph, private_uses_in_tests

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "lutnb"


def test_lutnb_has_no_cycles_no_forbidden_and_no_private_imports():
    assert check(PKG) == []


def test_tests_use_public_names_only():
    assert private_uses_in_tests(ROOT / "tests") == []


def test_graph_sees_function_level_and_init_edges():
    g = graph(PKG)
    assert "lutnb.kernels.dispatch" in g["lutnb.vq.distances"]
    assert "lutnb.kernels" in g["lutnb.vq.distances"]  # importing a submodule runs its package's __init__
    assert "lutnb.vq" not in g["lutnb.vq.distances"]    # but not the importer's own package


@pytest.fixture
def copy_of_lutnb(tmp_path):
    dst = tmp_path / "lutnb"
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    return dst


def _plant(path: Path, line: str, inside_function: bool = False) -> None:
    src = path.read_text()
    if inside_function:  # hidden behind a function-level import, as the old cycles were
        src += f"\n\ndef _planted():\n    {line}\n"
    else:
        marker = "from __future__ import annotations\n"
        src = src.replace(marker, marker + line + "\n", 1) if marker in src else line + "\n" + src
    ast.parse(src)
    path.write_text(src)


def test_planted_cycle_is_reported(copy_of_lutnb):
    _plant(copy_of_lutnb / "kernels" / "common.py", "from ..vq import distances", inside_function=True)
    problems = check(copy_of_lutnb)
    assert any(p.startswith("import cycle") and "lutnb.kernels.common" in p for p in problems), problems
    assert cycles(graph(copy_of_lutnb))


def test_kernels_may_not_import_files(copy_of_lutnb):
    _plant(copy_of_lutnb / "kernels" / "compiled.py", "from ..files import repo_root")
    assert any("`kernels` must not import files or runtime" in p for p in check(copy_of_lutnb))


def test_planted_forbidden_import_is_reported(copy_of_lutnb):
    _plant(copy_of_lutnb / "boosting" / "steps.py", "from ..zoo.data import load_digits", inside_function=True)
    _plant(copy_of_lutnb / "hw" / "lut_sim.py", "from ..boosting import lutboost")
    problems = check(copy_of_lutnb)
    assert any("lutnb.boosting.steps" in p and "`boosting` must not import `zoo`" in p for p in problems), problems
    assert any("lutnb.hw.lut_sim" in p and "`hw` must not import `boosting`" in p for p in problems), problems


def test_planted_private_import_is_reported(copy_of_lutnb, tmp_path):
    _plant(copy_of_lutnb / "deploy" / "engine.py", "from ..kernels.numba_jit import _order_sum")
    assert any("private name _order_sum" in p for p in check(copy_of_lutnb))
    _plant(copy_of_lutnb / "boosting" / "steps.py", "def _peek(layer):\n    return layer._soft_sub")
    assert any("lutnb.boosting.steps" in p and "_soft_sub, private to lutnb.vq.layers" in p
               for p in check(copy_of_lutnb))
    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_x.py").write_text("from lutnb.vq import layers\nfrom lutnb.vq.layers import _x\n\nlayers._y\n")
    found = private_uses_in_tests(tests)
    assert len(found) == 2 and "_x" in found[0] and "layers._y" in found[1]
