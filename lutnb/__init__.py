"""lutnb: LUT-DLA (arXiv 2501.10658) as a runnable toolkit.

Vector-quantized LUT layers for any PyTorch model, conversion and calibration, LUTBoost, table
export with a bit-exact integer engine, a cycle-level accelerator simulator, a cost model and
co-design space exploration. Sub-modules are imported lazily.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # name -> module that defines it
    "l2": "distances", "l1": "distances", "chebyshev": "distances", "pairwise_distance": "distances",
    "encode": "distances", "METRICS": "distances",
    "LUTLinear": "layers", "LUTConv2d": "layers", "LUTLayer": "layers", "set_mode": "layers",
    "lut_layers": "layers", "reconstruction_loss": "layers", "equivalent_bits": "layers",
    "convert": "conversion", "ConversionSummary": "conversion",
    "calibrate": "calibration", "kmeans": "calibration",
    "export_tables": "export", "ExportedLayer": "export", "ExportedModel": "export",
    "save_tables": "export", "load_tables": "export", "write_hex": "export",
    "IntegerEngine": "engine", "run_layer": "engine",
    "lutboost": "boosting", "single_stage": "boosting", "LUTBoostConfig": "boosting", "TrainStage": "boosting",
    "CalibrateStage": "boosting", "block_refit": "transformers", "fidelity": "transformers",
}


def __getattr__(name: str):
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'lutnb' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
