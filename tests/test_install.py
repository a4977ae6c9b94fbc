"""The install routes say what they do: the Makefile, environment.yml and environment-cuda.yml pin the same torch
with the right local tag and index, the route follows LUTNB_TORCH, pip resolves the CPU route to a `+cpu`
wheel, and every declared runtime dependency is imported somewhere."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from lutnb.files import repo_root

ROOT = repo_root()


def _make_var(name: str) -> str:
    m = re.search(rf"^{name} \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, f"Makefile has no `{name} ?=` line"
    return m.group(1)


def _route(tag: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on PATH")
    env = dict(os.environ, LUTNB_TORCH=tag)
    return subprocess.run([make, "-s", "-C", str(ROOT), "torch-route"], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("tag", ["cpu", "cu130", "cu126"])
def test_route_follows_lutnb_torch(tag):
    version = _make_var("TORCH_VERSION")
    assert _route(tag) == f"torch=={version}+{tag} --index-url https://download.pytorch.org/whl/{tag}"


@pytest.mark.parametrize("path,tag", [("environment.yml", "cpu"), ("environment-cuda.yml", "cu130")])
def test_conda_files_pin_the_makefile_torch(path, tag):
    text = (ROOT / path).read_text()
    version = _make_var("TORCH_VERSION")
    assert f"- torch=={version}+{tag}\n" in text
    assert f"- --extra-index-url https://download.pytorch.org/whl/{tag}\n" in text
    assert len(re.findall(r"^\s+- torch", text, re.M)) == 1


def test_cpu_route_resolves_to_a_cpu_wheel():
    """pip's own answer for the CPU route (from PyTorch's CPU index, or a local wheel cache mirroring it)."""
    version = _make_var("TORCH_VERSION")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
           "--retries", "1", "--timeout", "10", "--report", "-", f"torch=={version}+cpu",
           "--index-url", "https://download.pytorch.org/whl/cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        pytest.skip(f"neither PyTorch's CPU index nor a local wheel cache is reachable: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    versions = [i["metadata"]["version"] for i in report["install"] if i["metadata"]["name"] == "torch"]
    assert versions == [f"{version}+cpu"]


def _imported_modules() -> set:
    found = set()
    for folder in ("lutnb", "tests", "tools", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                found |= set(re.findall(r"^\s*(?:from|import) (\w+)", "".join(cell["source"]), re.M))
    return found


def test_every_runtime_dependency_is_used():
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    module = {"scikit-learn": "sklearn"}
    not_imported = {"ipykernel"}  # the notebooks' kernel (papermill and JupyterLab start it), never imported
    names = {re.split(r"[<>=!~\[ ]", d)[0] for d in deps}
    unused = sorted(n for n in names - not_imported if module.get(n, n) not in _imported_modules())
    assert unused == [], f"declared in pyproject.toml but imported nowhere: {unused}"
