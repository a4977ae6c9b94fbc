"""Table export: per LUT layer the codebooks, INT-b tables, scales, bias and shapes.

File format (`save_tables` / `load_tables`, a NumPy ``.npz``, format version 1):

    meta                 uint8 bytes of a UTF-8 JSON document: {"format": "lutnb-tables", "version": 1,
                         "layers": [{name, kind, v, c, metric, table_bits, in_features, out_features,
                         S, K_padded, has_bias, conv, layout}, ...]}
    <name>/codebooks     float32 (S, c, v)   centroids per sub-space
    <name>/table_q       int8/int16 (S, c, N) quantized tables Tq (see lutnb.vq.quant for the scale scheme)
    <name>/scale         float32 (N,)        per-output-channel scale: y = float32(acc) * scale + bias
    <name>/bias          float32 (N,)        present when has_bias

Layer rows follow the layer's K order: Linear inputs as given; Conv2d im2col rows in ``layout`` order
("channel" = (kh, kw, Cin), "patch" = (Cin, kh, kw)), zero-padded from K to K_padded = S * v.

`write_hex` writes Verilog ``$readmemh`` files per layer: ``<name>.table.hex`` (one entry per line,
two's complement, ceil(b/4) hex digits, order s, j, n), ``<name>.codebook.hex`` (codebooks quantized to
signed `codebook_bits` with one per-layer scale, order s, j, k) and ``<name>.json`` describing both.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_bytes
from ..kernels.common import check_metric
from ..vq.layers import LUTConv2d, LUTLayer, lut_layers
from ..vq.quant import check_table_bits, flat_tables, int_dtype_for, quantize_tables

FORMAT = "lutnb-tables"
VERSION = 1


@dataclass
class ExportedLayer:
    """One LUT layer as the accelerator sees it."""

    name: str
    kind: str  # "linear" | "conv2d"
    v: int
    c: int
    metric: str
    table_bits: int
    in_features: int  # K before padding
    out_features: int  # N
    codebooks: np.ndarray  # float32 (S, c, v)
    table_q: np.ndarray  # int (S, c, N)
    scale: np.ndarray  # float32 (N,)
    bias: np.ndarray | None = None  # float32 (N,)
    conv: dict | None = None  # in_channels, kernel_size, stride, padding, dilation
    layout: str = "channel"
    # derived arrays the engine and kernels build once per layer (torch tensors, packed tables); never saved
    runtime_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        check_metric(self.metric)
        check_table_bits(self.table_bits)
        if self.kind not in ("linear", "conv2d"):
            raise ValueError(f"kind={self.kind!r}: use 'linear' or 'conv2d'")
        S = self.S
        if self.codebooks.shape != (S, self.c, self.v):
            raise ValueError(f"layer {self.name}: codebooks shape {self.codebooks.shape} != (S, c, v) = "
                             f"{(S, self.c, self.v)}")
        if self.table_q.shape != (S, self.c, self.out_features):
            raise ValueError(f"layer {self.name}: table_q shape {self.table_q.shape} != (S, c, N) = "
                             f"{(S, self.c, self.out_features)}")
        qmax = 2 ** (self.table_bits - 1) - 1
        if self.table_q.size and np.abs(self.table_q.astype(np.int64)).max() > qmax:
            raise ValueError(f"layer {self.name}: table entries exceed the signed {self.table_bits}-bit range")

    @property
    def S(self) -> int:
        return math.ceil(self.in_features / self.v)

    @property
    def K_padded(self) -> int:
        return self.S * self.v

    @property
    def table_bytes(self) -> int:
        return math.ceil(self.table_q.size * self.table_bits / 8)

    def torch_tensors(self, device="cpu") -> dict:
        """Cached torch views used by the engine: codebooks, tq (int64), scale, bias, flat tables."""
        key = str(device)
        if key not in self.runtime_cache:

            tq = torch.as_tensor(self.table_q.astype(np.int64), device=device)
            self.runtime_cache[key] = {
                "codebooks": torch.as_tensor(self.codebooks, device=device),
                "tq": tq, "flat": flat_tables(tq),
                "scale": torch.as_tensor(self.scale, device=device),
                "bias": None if self.bias is None else torch.as_tensor(self.bias, device=device),
            }
        return self.runtime_cache[key]

    def meta(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("codebooks", "table_q", "scale", "bias",
                                                               "runtime_cache")}
        d.update(S=self.S, K_padded=self.K_padded, has_bias=self.bias is not None)
        return d


@dataclass
class ExportedModel:
    """All exported layers of a model, by name (insertion order = model order)."""

    layers: dict[str, ExportedLayer]

    def __post_init__(self):
        for key, layer in self.layers.items():
            if key != layer.name:
                raise ValueError(f"ExportedModel key {key!r} differs from its layer's name {layer.name!r}")

    def __getitem__(self, name: str) -> ExportedLayer:
        return self.layers[name]

    def __iter__(self):
        return iter(self.layers.values())

    def __len__(self):
        return len(self.layers)

    @property
    def table_bytes(self) -> int:
        return sum(layer.table_bytes for layer in self)


@torch.no_grad()
def export_layer(name: str, layer: LUTLayer, table_bits: int | None = None) -> ExportedLayer:
    bits = table_bits or layer.table_bits
    tq, scale = quantize_tables(layer.tables(), bits)
    conv = None
    if isinstance(layer, LUTConv2d):
        conv = {"in_channels": layer.in_channels, "kernel_size": list(layer.kernel_size),
                "stride": list(layer.stride), "padding": list(layer.padding), "dilation": list(layer.dilation)}
    b = getattr(layer, "bias", None)
    return ExportedLayer(
        name=name, kind="conv2d" if conv else "linear", v=layer.v, c=layer.c, metric=layer.metric,
        table_bits=bits, in_features=layer.K, out_features=layer.N,
        codebooks=layer.codebooks.detach().float().cpu().numpy().copy(),
        table_q=tq.cpu().numpy().astype(np.dtype(str(int_dtype_for(bits)).replace("torch.", ""))),
        scale=scale.cpu().numpy().astype(np.float32),
        bias=None if b is None else b.detach().float().cpu().numpy().copy(),
        conv=conv, layout=getattr(layer, "layout", "channel"),
    )


def export_tables(model: torch.nn.Module, table_bits: int | None = None) -> ExportedModel:
    """Export every LUT layer of a converted, calibrated model."""
    layers = {n: export_layer(n, m, table_bits) for n, m in lut_layers(model)}
    if not layers:
        raise ValueError("export_tables found no LUT layers: convert (and calibrate) the model first")
    return ExportedModel(layers)


def save_tables(exported: ExportedModel, path: str | Path) -> Path:
    """Write the documented .npz format atomically."""
    import io

    arrays = {}
    metas = []
    for layer in exported:
        metas.append(layer.meta())
        arrays[f"{layer.name}/codebooks"] = layer.codebooks.astype(np.float32)
        arrays[f"{layer.name}/table_q"] = layer.table_q
        arrays[f"{layer.name}/scale"] = layer.scale.astype(np.float32)
        if layer.bias is not None:
            arrays[f"{layer.name}/bias"] = layer.bias.astype(np.float32)
    meta = {"format": FORMAT, "version": VERSION, "layers": metas}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    return atomic_write_bytes(path, buf.getvalue())


def load_tables(path: str | Path) -> ExportedModel:
    """Read a file written by save_tables (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z:
            raise ValueError(f"{path}: not a lutnb tables file (no 'meta' entry)")
        meta = json.loads(bytes(z["meta"]).decode())
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"{path}: format {meta.get('format')!r} v{meta.get('version')} is not "
                             f"{FORMAT!r} v{VERSION}; re-export with this lutnb version")
        layers = {}
        for m in meta["layers"]:
            n = m["name"]
            layers[n] = ExportedLayer(
                name=n, kind=m["kind"], v=m["v"], c=m["c"], metric=m["metric"], table_bits=m["table_bits"],
                in_features=m["in_features"], out_features=m["out_features"],
                codebooks=z[f"{n}/codebooks"], table_q=z[f"{n}/table_q"], scale=z[f"{n}/scale"],
                bias=z[f"{n}/bias"] if m["has_bias"] else None, conv=m["conv"], layout=m.get("layout", "channel"))
    return ExportedModel(layers)


def _hex_lines(values: np.ndarray, bits: int) -> str:
    digits = math.ceil(bits / 4)
    mask = (1 << bits) - 1
    return "\n".join(f"{int(x) & mask:0{digits}x}" for x in values.reshape(-1)) + "\n"


def write_hex(exported: ExportedModel, directory: str | Path, codebook_bits: int = 8) -> list[Path]:
    """Write Verilog $readmemh files (tables and codebooks) plus a JSON sidecar per layer."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    qmax = 2 ** (codebook_bits - 1) - 1
    for layer in exported:
        stem = layer.name.replace(".", "_") or "layer"
        amax = float(np.abs(layer.codebooks).max()) if layer.codebooks.size else 0.0
        cb_scale = amax / qmax if amax > 0 else 1.0
        cbq = np.clip(np.rint(layer.codebooks / cb_scale), -qmax, qmax).astype(np.int64)
        files = {
            f"{stem}.table.hex": _hex_lines(layer.table_q.astype(np.int64), layer.table_bits),
            f"{stem}.codebook.hex": _hex_lines(cbq, codebook_bits),
            f"{stem}.json": json.dumps({**layer.meta(), "table_order": "s,j,n", "codebook_order": "s,j,k",
                                        "codebook_bits": codebook_bits, "codebook_scale": cb_scale,
                                        "table_entry_hex_digits": math.ceil(layer.table_bits / 4),
                                        "scale": layer.scale.tolist()}, indent=1),
        }
        for fname, text in files.items():
            written.append(atomic_write_bytes(out / fname, text.encode()))
    return written


def read_hex(path: str | Path, bits: int) -> np.ndarray:
    """Parse a $readmemh file back to signed integers (for checks)."""
    vals = np.array([int(s, 16) for s in Path(path).read_text().split()], dtype=np.int64)
    return np.where(vals >= 1 << (bits - 1), vals - (1 << bits), vals)


def random_layer(K: int, N: int, v: int = 4, c: int = 16, metric: str = "l2", table_bits: int = 8,
                 seed: int = 0, bias: bool = True, name: str = "layer") -> ExportedLayer:
    """A random but valid exported linear layer (for tests and the simulator)."""
    g = np.random.default_rng(seed)
    S = math.ceil(K / v)
    qmax = 2 ** (table_bits - 1) - 1
    tq = g.integers(-qmax, qmax + 1, size=(S, c, N))
    return ExportedLayer(
        name=name, kind="linear", v=v, c=c, metric=metric, table_bits=table_bits, in_features=K,
        out_features=N, codebooks=g.standard_normal((S, c, v)).astype(np.float32),
        table_q=tq.astype(np.dtype(str(int_dtype_for(table_bits)).replace("torch.", ""))),
        scale=(g.random(N).astype(np.float32) * 0.01 + 1e-3),
        bias=g.standard_normal(N).astype(np.float32) if bias else None)
