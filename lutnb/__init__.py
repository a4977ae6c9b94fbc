"""lutnb: LUT-DLA (arXiv 2501.10658) as a runnable toolkit.

Vector-quantized LUT layers for any PyTorch model, conversion and calibration, LUTBoost, table
export with a bit-exact integer engine, a cycle-level accelerator simulator, a cost model and
co-design space exploration. One sub-package per stage of the pipeline (see the README's design
notes); the names below are imported lazily.
"""
from __future__ import annotations

import importlib

from . import compat

__version__ = "0.1.0"

_LAZY = {
    # name -> module that defines it
    "l2": "vq.distances", "l1": "vq.distances", "chebyshev": "vq.distances", "pairwise_distance": "vq.distances",
    "encode": "vq.distances", "METRICS": "vq.distances",
    "LUTLinear": "vq.layers", "LUTConv2d": "vq.layers", "LUTLayer": "vq.layers", "set_mode": "vq.layers",
    "lut_layers": "vq.layers", "reconstruction_loss": "vq.layers", "equivalent_bits": "vq.layers",
    "convert": "vq.conversion", "ConversionSummary": "vq.conversion",
    "calibrate": "vq.calibration", "kmeans": "vq.calibration",
    "export_tables": "deploy.export", "ExportedLayer": "deploy.export", "ExportedModel": "deploy.export",
    "save_tables": "deploy.export", "load_tables": "deploy.export", "write_hex": "deploy.export",
    "IntegerEngine": "deploy.engine", "run_layer": "deploy.engine",
    "compile": "deploy.compiled_model", "CompiledModel": "deploy.compiled_model",
    "lutboost": "boosting.runner", "single_stage": "boosting.runner", "LUTBoostConfig": "boosting.config",
    "TrainStage": "boosting.config", "CalibrateStage": "boosting.config",
    "block_refit": "boosting.refit", "fidelity": "boosting.embeddings",
    "convert_encoder": "experiments.encoders",
}

compat.install()


def __getattr__(name: str):
    if name in _LAZY:
        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'lutnb' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
