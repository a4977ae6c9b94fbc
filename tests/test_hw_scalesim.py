"""Cross-check lutnb.hw.dense against the real SCALE-Sim 3.0.0 (venv from tools/scalesim_env.sh)."""
import random

import pytest

from lutnb.hw import GemmWorkload, systolic_cycles, systolic_sram_accesses
from lutnb.hw.scalesim_compat import run_scalesim, scalesim_python


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_dense_matches_scalesim_on_random_layers(dataflow):
    py = scalesim_python()
    if py is None:
        pytest.skip("SCALE-Sim 3.0.0 venv not found (run tools/scalesim_env.sh or set LUTNB_SCALESIM_PYTHON)")
    rnd = random.Random(7)
    works = [GemmWorkload(f"l{i}", M=rnd.randint(1, 70), K=rnd.randint(1, 70), N=rnd.randint(1, 70))
             for i in range(6)] + [GemmWorkload("golden", M=256, K=256, N=128)]
    rows, cols = 8, 16
    for w, r in zip(works, run_scalesim(works, rows, cols, dataflow, python=py), strict=True):
        assert systolic_cycles(w.M, w.K, w.N, rows, cols, dataflow)["total_cycles"] == r["Total Cycles"]
        s = systolic_sram_accesses(w.M, w.K, w.N, rows, cols, dataflow)
        assert (s["activations"], s["weights"], s["outputs"]) == (
            r["SRAM IFMAP Reads"], r["SRAM Filter Reads"], r["SRAM OFMAP Writes"])
