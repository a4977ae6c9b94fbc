"""SMOKE or FULL: what one notebook run is, and the provenance a FULL result carries.

Every notebook calls ``begin_run("NN_name", globals())`` once, right after its parameters. From then on
`lutnb.nb.figures.savefig` and `lutnb.nb.results.write_results` know the mode:

- SMOKE (CI sizes, a plumbing check): figures go to ``figures/_smoke/`` (git-ignored) with a visible
  "SMOKE" stamp; results go to ``results/NN_name.json`` (git-ignored) only.
- FULL: figures go to ``figures/`` (committable); results go to ``results/NN_name.json`` and to
  ``data/reference_results/NN_name.json`` (committable), both with a ``provenance`` block: git commit, UTC
  date, command, parameters, machine, wall time, seeds.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ..files import repo_root

_RUN: dict = {}


def begin_run(notebook: str, namespace: dict) -> dict:
    """Start the run of notebook `notebook` ("01_vector_quantization"); `namespace` is the notebook's
    ``globals()``: its ``SMOKE`` says the mode, and the names its parameters cell declares are recorded."""
    if "SMOKE" not in namespace or not isinstance(namespace["SMOKE"], bool):
        raise ValueError(f"begin_run({notebook!r}): the namespace has no boolean SMOKE "
                         f"(got {namespace.get('SMOKE')!r}); call it after the parameters cell, "
                         "with globals(), and set SMOKE = True or False there")
    params = {}
    path = repo_root() / "notebooks" / f"{notebook}.ipynb"
    if path.exists():
        from .reproduce import declared_parameters

        params = {k: namespace[k] for k in declared_parameters(path) if k in namespace}
    if not params:
        params = {k: namespace[k] for k in ("SMOKE", "SEED", "SEEDS") if k in namespace}
    seeds = [namespace["SEED"]] if "SEED" in namespace else []
    if isinstance(namespace.get("SEEDS"), (list, tuple)):
        seeds = sorted(set(seeds) | set(namespace["SEEDS"]))
    _RUN.clear()
    _RUN.update(notebook=notebook, smoke=namespace["SMOKE"], parameters=params, seeds=seeds,
                started=time.time())
    print(f"{notebook}: {'SMOKE (CI sizes: a plumbing check, not a result)' if _RUN['smoke'] else 'FULL'} run; "
          f"figures -> {'figures/_smoke/' if _RUN['smoke'] else 'figures/'}"
          f"{'' if _RUN['smoke'] else ', results -> data/reference_results/'}")
    return dict(_RUN)


def end_run() -> None:
    """Forget the current run (tests; a notebook never needs it)."""
    _RUN.clear()


def run_mode(smoke: bool | None = None, required: bool = True) -> bool | None:
    """True for SMOKE, False for FULL: `smoke` if given, else the current run's, else LUTNB_SMOKE (1/0).

    With none of them known, `required` raises (a figure must not guess where it belongs); else None."""
    if smoke is not None:
        return bool(smoke)
    if _RUN:
        return _RUN["smoke"]
    env = os.environ.get("LUTNB_SMOKE", "").strip().lower()
    if env in ("1", "true", "yes"):
        return True
    if env in ("0", "false", "no"):
        return False
    if required:
        raise ValueError("SMOKE or FULL is not known: call lutnb.nb.begin_run('NN_name', globals()) after the "
                         "parameters cell, pass smoke=True/False, or set LUTNB_SMOKE=1 (SMOKE) or 0 (FULL)")
    return None


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Platform, Python, CPU model and count, torch version and the CUDA GPUs (if any)."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_model(),
            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpus"] = ([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
                        if torch.cuda.is_available() else [])
    except ImportError:
        info["gpus"] = []
    return info


def provenance() -> dict:
    """Where a FULL result came from: commit (and whether tracked files other than figures/ and
    data/reference_results/ had uncommitted changes), UTC date,
    command, parameters, machine, wall time since `begin_run`, seeds."""
    commit = _git("rev-parse", "HEAD")
    # uncommitted changes to tracked files, outside the outputs a FULL run itself rewrites
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)figures",
                      ":(exclude)data/reference_results")) if commit else None
    command = os.environ.get("LUTNB_COMMAND") or (
        f"notebooks/{_RUN['notebook']}.ipynb run interactively" if _RUN else " ".join(sys.argv))
    return {
        "commit": commit or None, "dirty": dirty,
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command, "notebook": _RUN.get("notebook"), "mode": "FULL",
        "parameters": dict(_RUN.get("parameters", {})), "seeds": list(_RUN.get("seeds", [])),
        "machine": machine(),
        "wall_seconds": round(time.time() - _RUN["started"], 1) if _RUN else None,
    }
