"""lutnb.deploy: tables out of a trained LUT model, and an integer engine that runs them.

``export`` (the ``.npz`` table format and Verilog ``$readmemh`` files), ``engine`` (`IntegerEngine`: the
accelerator's arithmetic in software, bit-identical to the PyTorch model in ``mode="quant"``).
"""
from .engine import EngineStats, IntegerEngine, run_layer
from .export import (
    ExportedLayer,
    ExportedModel,
    TablesFileError,
    export_tables,
    load_tables,
    save_tables,
    write_hex,
)

__all__ = ["EngineStats", "ExportedLayer", "ExportedModel", "IntegerEngine", "TablesFileError", "export_tables",
           "load_tables", "run_layer", "save_tables", "write_hex"]
