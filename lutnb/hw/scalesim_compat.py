"""Run the real SCALE-Sim 3.0.0 (in its own venv, it needs numpy < 2.3) to cross-check `lutnb.hw.dense`.

The venv is made by `tools/scalesim_env.sh` (default /tmp/scalesim-venv, override with LUTNB_SCALESIM_PYTHON
pointing at its python). Nothing here is needed to use lutnb; tests skip when the venv is absent.
"""
from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from pathlib import Path

from .workloads import GemmWorkload, write_scalesim_topology

DEFAULT_PYTHON = "/tmp/scalesim-venv/bin/python"

_CFG = """[general]
run_name = lutnb

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:    {ifmap_kb}
FilterSramSzkB:   {filter_kb}
OfmapSramSzkB:    {ofmap_kb}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {dataflow}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

_RUNNER = """
import sys
from scalesim.scale_sim import scalesim
s = scalesim(save_disk_space=True, verbose=False, config=sys.argv[1], topology=sys.argv[2],
             layout=sys.argv[3], input_type_gemm=True)
s.run_scale(top_path=sys.argv[4])
"""


def scalesim_python() -> str | None:
    """Path of the SCALE-Sim venv's python if it exists and imports scalesim, else None."""
    py = os.environ.get("LUTNB_SCALESIM_PYTHON", DEFAULT_PYTHON)
    if not Path(py).exists():
        return None
    ok = subprocess.run([py, "-c", "import scalesim.scale_sim"], capture_output=True, timeout=120)
    return py if ok.returncode == 0 else None


def _read_report(path: Path) -> list[dict]:
    rows = list(csv.reader(path.read_text().splitlines()))
    head = [h.strip() for h in rows[0] if h.strip()]
    return [dict(zip(head, [float(x) for x in r if x.strip()], strict=False)) for r in rows[1:] if r]


def run_scalesim(workloads: list[GemmWorkload], rows: int = 32, cols: int = 32, dataflow: str = "ws",
                 python: str | None = None, sram_kb: tuple = (6144, 6144, 2048),
                 timeout: int = 600) -> list[dict]:
    """Run SCALE-Sim (GEMM mode, CALC bandwidth) on `workloads`; one dict per layer from its reports."""
    py = python or scalesim_python()
    if py is None:
        raise RuntimeError("SCALE-Sim venv not found: run tools/scalesim_env.sh")
    with tempfile.TemporaryDirectory(prefix="lutnb-scalesim-") as tmp:
        tmp = Path(tmp)
        ifmap_kb, filter_kb, ofmap_kb = sram_kb
        (tmp / "scale.cfg").write_text(_CFG.format(rows=rows, cols=cols, dataflow=dataflow, ifmap_kb=ifmap_kb,
                                                   filter_kb=filter_kb, ofmap_kb=ofmap_kb))
        write_scalesim_topology(workloads, tmp / "topo.csv", mode="gemm")
        (tmp / "layout.csv").write_text("Layer,\n")
        (tmp / "run.py").write_text(_RUNNER)
        proc = subprocess.run([py, str(tmp / "run.py"), str(tmp / "scale.cfg"), str(tmp / "topo.csv"),
                               str(tmp / "layout.csv"), str(tmp / "out")], capture_output=True, text=True,
                              timeout=timeout, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"SCALE-Sim failed: {proc.stderr[-2000:]}")
        comp = _read_report(tmp / "out" / "lutnb" / "COMPUTE_REPORT.csv")
        det = _read_report(tmp / "out" / "lutnb" / "DETAILED_ACCESS_REPORT.csv")
    return [{**a, **b} for a, b in zip(comp, det, strict=True)]
