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
CONV_KEYS = ("in_channels", "kernel_size", "stride", "padding", "dilation")


class TablesFileError(ValueError):
    """A tables file that cannot be read or fails the format's schema check (the message names the path)."""


def table_dtype(bits: int) -> np.dtype:
    """The numpy dtype of b-bit tables in the file format (int8 up to 8 bits, int16 above)."""
    return np.dtype(str(int_dtype_for(bits)).replace("torch.", ""))


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
        """Every field checked against the declared K, N, S, c, v, table_bits (one place: files and code)."""
        where = f"layer {self.name!r}"
        if not isinstance(self.name, str):
            raise TypeError(f"layer name {self.name!r} must be a str (the module's dotted name)")
        for f in ("v", "c", "in_features", "out_features"):
            val = getattr(self, f)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{where}: {f}={val!r} must be a positive integer")
            setattr(self, f, int(val))
        check_metric(self.metric)
        check_table_bits(self.table_bits)
        if self.kind not in ("linear", "conv2d"):
            raise ValueError(f"{where}: kind={self.kind!r}: use 'linear' or 'conv2d'")
        if self.layout not in ("channel", "patch"):
            raise ValueError(f"{where}: layout={self.layout!r}: use 'channel' or 'patch'")
        self._check_conv(where)
        S, N = self.S, self.out_features
        self.codebooks = self._array("codebooks", self.codebooks, (S, self.c, self.v), "(S, c, v)", where)
        self.table_q = self._array("table_q", self.table_q, (S, self.c, N), "(S, c, N)", where)
        self.scale = self._array("scale", self.scale, (N,), "(N,) = (out_features,)", where)
        if self.bias is not None:
            self.bias = self._array("bias", self.bias, (N,), "(N,) = (out_features,)", where)
        if self.table_q.dtype.kind not in "iu":
            raise ValueError(f"{where}: table_q has dtype {self.table_q.dtype}; the tables must be integers "
                             f"(signed {self.table_bits}-bit values, e.g. {np.dtype(table_dtype(self.table_bits))})")
        for f in ("codebooks", "scale", "bias"):
            a = getattr(self, f)
            if a is None:
                continue
            if a.dtype.kind not in "f":
                raise ValueError(f"{where}: {f} has dtype {a.dtype}; it must be floating point (float32)")
            if a.size and not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).sum())
                raise ValueError(f"{where}: {f} holds {bad} non-finite value(s) (NaN or inf); re-export the "
                                 "layer from a calibrated model with finite parameters")
        if self.scale.size and not (self.scale > 0).all():
            raise ValueError(f"{where}: scale holds {int((self.scale <= 0).sum())} value(s) <= 0; the per-output "
                             "scale is amax / qmax (or 1 for an all-zero column) and always positive")
        qmax = 2 ** (self.table_bits - 1) - 1
        if self.table_q.size:
            lo, hi = int(self.table_q.min()), int(self.table_q.max())
            if lo < -qmax or hi > qmax:
                raise ValueError(f"{where}: table entries span [{lo}, {hi}], outside the signed {self.table_bits}-bit "
                                 f"range [-{qmax}, {qmax}] of table_bits={self.table_bits}")

    @staticmethod
    def _array(field_name: str, a, shape: tuple, what: str, where: str) -> np.ndarray:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{where}: {field_name} is a {type(a).__name__}; pass a numpy array of shape {what}")
        if a.shape != shape:
            raise ValueError(f"{where}: {field_name} shape {a.shape} != {what} = {shape}")
        return a

    def _check_conv(self, where: str) -> None:
        if self.kind == "linear":
            if self.conv is not None:
                raise ValueError(f"{where}: a linear layer has conv={self.conv!r}; use conv=None (or kind='conv2d')")
            return
        if not isinstance(self.conv, dict):
            raise ValueError(f"{where}: kind='conv2d' needs conv={{in_channels, kernel_size, stride, padding, "
                             f"dilation}}, got {self.conv!r}")
        missing = [k for k in CONV_KEYS if k not in self.conv]
        if missing:
            raise ValueError(f"{where}: conv is missing {missing}; it needs {list(CONV_KEYS)}")
        cin = self.conv["in_channels"]
        if isinstance(cin, bool) or not isinstance(cin, (int, np.integer)) or cin < 1:
            raise ValueError(f"{where}: conv in_channels={cin!r} must be a positive integer")
        for k, low in (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
            val = self.conv[k]
            if (not isinstance(val, (list, tuple)) or len(val) != 2
                    or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low for x in val)):
                raise ValueError(f"{where}: conv {k}={val!r} must be two integers >= {low}")
        kh, kw = self.conv["kernel_size"]
        if self.in_features != cin * kh * kw:
            raise ValueError(f"{where}: in_features={self.in_features} != in_channels * kh * kw = "
                             f"{cin} * {kh} * {kw} = {cin * kh * kw}")

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
    bits = layer.table_bits if table_bits is None else check_table_bits(table_bits)
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
        table_q=tq.cpu().numpy().astype(table_dtype(bits)),
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
    """Write the documented .npz format atomically (a path without the .npz suffix gets it)."""
    import io

    if not isinstance(exported, ExportedModel):
        raise TypeError(f"save_tables(exported=...) got a {type(exported).__name__}; pass an ExportedModel "
                        "(from export_tables(model) or load_tables(path))")
    arrays = {}
    metas = []
    for layer in exported:
        metas.append(layer.meta())
        arrays[f"{layer.name}/codebooks"] = layer.codebooks.astype(np.float32)
        arrays[f"{layer.name}/table_q"] = layer.table_q.astype(table_dtype(layer.table_bits), copy=False)
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


# the file's meta entry per layer: key -> (allowed python types, what to say)
_META_FIELDS = {
    "name": (str, "a str"), "kind": (str, "'linear' or 'conv2d'"), "v": (int, "an integer"),
    "c": (int, "an integer"), "metric": (str, "a str"), "table_bits": (int, "an integer"),
    "in_features": (int, "an integer"), "out_features": (int, "an integer"), "S": (int, "an integer"),
    "K_padded": (int, "an integer"), "has_bias": (bool, "true or false"),
    "conv": ((dict, type(None)), "an object or null"), "layout": (str, "'channel' or 'patch'"),
}


def _check_meta_layer(m, i: int) -> dict:
    if not isinstance(m, dict):
        raise ValueError(f"meta layer #{i} is a {type(m).__name__}, not an object")
    missing = [k for k in _META_FIELDS if k not in m and k != "layout"]
    if missing:
        raise ValueError(f"meta layer #{i} ({m.get('name', '?')!r}) is missing {missing}")
    for k, (types, what) in _META_FIELDS.items():
        if k in m and (not isinstance(m[k], types) or (types is int and isinstance(m[k], bool))):
            raise ValueError(f"meta layer {m['name']!r}: {k}={m[k]!r} must be {what}")
    return m


def _load_layer(z, m: dict) -> ExportedLayer:
    n = m["name"]
    arrays = {}
    for f, dtype in (("codebooks", np.dtype(np.float32)), ("table_q", None), ("scale", np.dtype(np.float32)),
                     ("bias", np.dtype(np.float32))):
        key = f"{n}/{f}"
        if f == "bias" and not m["has_bias"]:
            if key in z.files:
                raise ValueError(f"layer {n!r} has a {key!r} entry but has_bias is false")
            arrays[f] = None
            continue
        if key not in z.files:
            raise ValueError(f"layer {n!r}: entry {key!r} is missing")
        a = z[key]
        want = dtype if dtype is not None else (table_dtype(m["table_bits"]) if 4 <= m["table_bits"] <= 16 else None)
        if want is not None and a.dtype != want:
            raise ValueError(f"layer {n!r}: {f} has dtype {a.dtype}, the format stores {want}"
                             + (f" for table_bits={m['table_bits']}" if f == "table_q" else ""))
        arrays[f] = a
    layer = ExportedLayer(name=n, kind=m["kind"], v=m["v"], c=m["c"], metric=m["metric"],
                          table_bits=m["table_bits"], in_features=m["in_features"],
                          out_features=m["out_features"], conv=m["conv"], layout=m.get("layout", "channel"),
                          **arrays)
    for k in ("S", "K_padded"):
        if m[k] != getattr(layer, k):
            raise ValueError(f"layer {n!r}: {k}={m[k]} disagrees with in_features={layer.in_features}, "
                             f"v={layer.v} ({k} = {getattr(layer, k)})")
    return layer


def load_tables(path: str | Path) -> ExportedModel:
    """Read a file written by save_tables (no pickles are loaded).

    The file is checked against the format: readable archive, format name and version, every layer's meta
    fields, every array's presence, dtype and shape against the layer's K, N, S, c, v, table_bits, finite
    codebooks/scales/biases and table entries inside the table_bits range; anything else raises
    `TablesFileError` naming the path (FileNotFoundError for a missing file)."""
    import zipfile
    import zlib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no tables file at {path}; write one with save_tables(export_tables(model), path)")
    if not path.is_file():
        raise TablesFileError(f"{path} is not a file; pass the .npz written by save_tables")
    hint = "re-export it with save_tables(export_tables(model), path)"
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not the archive save_tables writes")
        with z:
            if "meta" not in z.files:
                raise TablesFileError(f"{path}: not a lutnb tables file (no 'meta' entry); {hint}")
            try:
                meta = json.loads(bytes(z["meta"]).decode())
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"its 'meta' entry is not JSON ({e})") from None
            if not isinstance(meta, dict):
                raise ValueError("its 'meta' entry is not a JSON object")
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise TablesFileError(f"{path}: format {meta.get('format')!r} v{meta.get('version')} is not "
                                      f"{FORMAT!r} v{VERSION}; re-export with this lutnb version")
            if not isinstance(meta.get("layers"), list):
                raise ValueError("its meta has no 'layers' list")
            layers = {}
            for i, m in enumerate(meta["layers"]):
                m = _check_meta_layer(m, i)
                if m["name"] in layers:
                    raise ValueError(f"layer {m['name']!r} appears twice")
                layers[m["name"]] = _load_layer(z, m)
            known = {"meta"} | {f"{n}/{f}" for n in layers for f in ("codebooks", "table_q", "scale", "bias")}
            extra = sorted(set(z.files) - known)
            if extra:
                raise ValueError(f"unexpected entries {extra[:5]}")
    except TablesFileError:
        raise
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise TablesFileError(f"{path}: not a lutnb tables file, or a damaged one (truncated or edited): "
                              f"{e}; {hint}") from None
    return ExportedModel(layers)


def _hex_lines(values: np.ndarray, bits: int) -> str:
    digits = math.ceil(bits / 4)
    mask = (1 << bits) - 1
    return "\n".join(f"{int(x) & mask:0{digits}x}" for x in values.reshape(-1)) + "\n"


CODEBOOK_BITS_RANGE = (2, 32)


def write_hex(exported: ExportedModel, directory: str | Path, codebook_bits: int = 8) -> list[Path]:
    """Write Verilog $readmemh files (tables and codebooks) plus a JSON sidecar per layer.

    codebook_bits: signed width of the quantized codebook entries, an integer from 2 to 32."""
    if not isinstance(exported, ExportedModel):
        raise TypeError(f"write_hex(exported=...) got a {type(exported).__name__}; pass an ExportedModel "
                        "(from export_tables(model) or load_tables(path))")
    lo, hi = CODEBOOK_BITS_RANGE
    if isinstance(codebook_bits, bool) or not isinstance(codebook_bits, int) or not lo <= codebook_bits <= hi:
        raise ValueError(f"codebook_bits={codebook_bits!r} is out of range: use an integer from {lo} to {hi} "
                         "(a signed entry needs a sign bit and at least one magnitude bit; 8 is the default)")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"write_hex(directory={str(out)!r}): that path is a file; pass a folder")
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
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"read_hex(bits={bits!r}): use the positive entry width the file was written with")
    path = Path(path)
    try:
        vals = np.array([int(s, 16) for s in path.read_text().split()], dtype=np.int64)
    except ValueError as e:
        raise ValueError(f"{path} is not a $readmemh file of hex entries ({e})") from None
    if vals.size and vals.max() >= 1 << bits:
        raise ValueError(f"{path}: entry {int(vals.max()):x} does not fit bits={bits}; "
                         "pass the width it was written with")
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
        table_q=tq.astype(table_dtype(table_bits)),
        scale=(g.random(N).astype(np.float32) * 0.01 + 1e-3),
        bias=g.standard_normal(N).astype(np.float32) if bias else None)
