"""The compiled LUT kernel (lutnb/kernels/csrc/lutgemm.c): fused encode + int8 look-up-accumulate, called via ctypes.

Why a C kernel next to the numba ones (`lutnb.kernels.numba_kernels`; `lutnb.kernels.dispatch` picks one): the
look-up the accelerator does in its IMM maps onto two AVX-512 instructions that numba cannot emit. The codes of
4 sub-spaces of a row are packed into one 32-bit word (byte q = 16*q + code, c <= 16); one 64-byte register
holds the INT8 tables of those 4 sub-spaces for one output column; ``vpermb`` looks up 64 entries (16 rows x 4
sub-spaces) at once and ``vpdpbusd`` adds each row's 4 entries into its int32 accumulator. The encode keeps a
row block's sub-vectors in registers and runs the distance and running argmin 16 rows per instruction.
Measured on the issue-2 layer (M=4096, K=576,
N=64, v=4, c=16, 1 thread): see ``benchmarks/bench_engine.py``.

Build: the first call compiles the source with the system C compiler (``$CC``, default ``cc``;
``-O3 -march=native -ffp-contract=off``: no FMA contraction, so float results equal the torch path) into
``$LUTNB_CACHE`` (default ``~/.cache/lutnb``), keyed by the source, the flags, the compiler and the CPU, and
written atomically. Without a compiler, or with ``LUTNB_CKERNEL=0``, everything falls back to the numba
kernels (and ``LUTNB_NATIVE=0`` switches both off). Where the CPU lacks AVX-512 VBMI/VNNI the same source
builds a portable version (plain loops, the same results).

Exactness: for L1/L2 with v <= 4 and Chebyshev with any v the indices equal `lutnb.kernels.dispatch.encode`
(and so the torch encode) bit for bit; the accumulators equal `lutnb.vq.quant.lookup_accumulate_reference`.
Tables must fit int8 (INT8 tables, the default; wider tables use the numba kernel).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .common import METRIC_CODES

SOURCE = Path(__file__).parent / "csrc" / "lutgemm.c"


FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared", "-std=gnu11"]


OPENMP_FLAG = "-fopenmp"  # tried first: one thread pool with torch (see `shares_torch_pool`); without it on failure


MAX_V = 64


_lock = threading.Lock()


_libs: dict[bool, ctypes.CDLL | None] = {}


_errors: dict[bool, str] = {}


_pool: ThreadPoolExecutor | None = None


_pool_size = 0


def enabled() -> bool:
    """False when LUTNB_CKERNEL is set to 0/false/off/no."""
    return os.environ.get("LUTNB_CKERNEL", "1").strip().lower() not in ("0", "false", "off", "no")


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("flags", "model name", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() + platform.machine()


def _compiler() -> str | None:
    cc = os.environ.get("CC", "cc")
    return shutil.which(cc)


def cache_dir() -> Path:
    return Path(os.environ.get("LUTNB_CACHE", Path.home() / ".cache" / "lutnb"))


def _flags(portable: bool, openmp: bool) -> list[str]:
    return FLAGS + (["-DLUTNB_PORTABLE"] if portable else []) + ([OPENMP_FLAG] if openmp else [])


def library_path(portable: bool = False, openmp: bool = True) -> Path:
    """Where the compiled library for this source, compiler, flags and CPU lives (built or not)."""
    cc = _compiler() or "cc"
    flags = _flags(portable, openmp)
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(flags).encode(), cc.encode(),
                                     _cpu_id().encode()])).hexdigest()[:16]
    return cache_dir() / f"lutgemm-{'portable-' if portable else ''}{key}.so"


def build(portable: bool = False) -> Path:
    """Compile the kernel (if not cached) and return the library path; raises RuntimeError with the reason.
    With OpenMP where the compiler has it (one thread pool with torch), else without."""
    if _torch_uses_gomp():
        try:
            return _build(portable, True)
        except RuntimeError:
            pass
    return _build(portable, False)


def _torch_uses_gomp() -> bool:
    """Whether torch's parallel backend is OpenMP (then the library is built with OpenMP, to share its runtime)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _build(portable: bool, openmp: bool) -> Path:
    out = library_path(portable, openmp)
    if out.exists():
        return out
    cc = _compiler()
    if cc is None:
        raise RuntimeError(f"no C compiler ({os.environ.get('CC', 'cc')!r} not on PATH); install gcc or set CC")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [cc, *_flags(portable, openmp), "-o", tmp, str(SOURCE), "-lm"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"compiling {SOURCE.name} failed ({' '.join(cmd)}):\n{r.stderr[-2000:]}")
        os.replace(tmp, out)  # atomic: concurrent builders each write their own temp file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.lutnb_simd_level.restype = i32
    lib.lutnb_row_block.restype = i32
    lib.lutnb_encode.restype = i32
    lib.lutnb_encode.argtypes = [p, i64, p, i64, i64, i64, i32, i32, i64, i64, p]
    lib.lutnb_fused.restype = i32
    lib.lutnb_fused.argtypes = [p, i64, p, i64, i64, i64, i32, i32, p, p, i64, i32, i64, i64, p, p, p, p, p]
    lib.lutnb_lookup.restype = i32
    lib.lutnb_lookup.argtypes = [p, i64, i64, p, p, i64, i32, i64, i64, p, p, p, p]
    lib.lutnb_fused_q8.restype = i32
    lib.lutnb_fused_q8.argtypes = [p, p, p, i64, i64, p, p, i64, i32, i64, i64, p, p, p, p, p]
    lib.lutnb_quantize_u8.restype = i32
    lib.lutnb_quantize_u8.argtypes = [p, i64, i64, ctypes.c_float, p, i64]
    lib.lutnb_im2col_u8.restype = None
    lib.lutnb_im2col_u8.argtypes = [p] + [i64] * 16 + [p]
    lib.lutnb_table_sum_f32.restype = None
    lib.lutnb_table_sum_f32.argtypes = [p, p, i64, i64, i64, p, i64, i64, p]
    lib.lutnb_job_q8.restype = i32
    lib.lutnb_job_q8.argtypes = [p, i64, i64]
    lib.lutnb_job_f32.restype = i32
    lib.lutnb_job_f32.argtypes = [p, i64, i64]
    lib.lutnb_openmp.restype = i32
    if lib.lutnb_openmp():
        lib.lutnb_job_par.restype = i32
        lib.lutnb_job_par.argtypes = [i32, p, i64, i32]
        lib.lutnb_quantize_par.restype = i32
        lib.lutnb_quantize_par.argtypes = [p, i64, i64, ctypes.c_float, p, i64, i32]
    lib.lutnb_affine_f32.restype = None
    lib.lutnb_affine_f32.argtypes = [p, i64, i64, p, p, i32, p]
    lib.lutnb_table_scatter_f32.restype = None
    lib.lutnb_table_scatter_f32.argtypes = [p, p, i64, i64, i64, i64, i64, i64, p]
    return lib


def load(portable: bool = False) -> ctypes.CDLL | None:
    """The loaded library (building it on first use), or None when it cannot be built (see `unavailable_reason`)."""
    with _lock:
        if portable not in _libs:
            try:
                lib = _libs[portable] = _declare(ctypes.CDLL(str(build(portable))))
                _lib_of[id(lib.lutnb_job_q8)] = _lib_of[id(lib.lutnb_job_f32)] = lib
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                _libs[portable] = None
                _errors[portable] = str(e)
        return _libs[portable]


_lib_of: dict = {}  # id(job function) -> its library
_shared_pool: dict = {}


def shares_torch_pool(lib: ctypes.CDLL) -> bool:
    """Whether the library's OpenMP regions run on torch's own OpenMP threads: built with OpenMP, torch's backend
    is OpenMP, and only one libgomp is loaded in the process (torch's; the library bound to it by soname).
    Otherwise the row ranges run on a Python thread pool (`_parallel`)."""
    key = id(lib)
    if key not in _shared_pool:
        ok = bool(lib.lutnb_openmp()) and "parallel backend: OpenMP" in torch.__config__.parallel_info()
        if ok:
            try:
                with open("/proc/self/maps") as f:
                    paths = {ln.split()[-1] for ln in f if "libgomp" in ln and "/" in ln}
                torch_dir = str(Path(torch.__file__).resolve().parent.parent)  # torch/lib or torch.libs
                ok = len(paths) == 1 and os.path.realpath(next(iter(paths))).startswith(torch_dir)
            except OSError:
                ok = False
        _shared_pool[key] = ok
    return _shared_pool[key]


def available() -> bool:
    return enabled() and load() is not None


def unavailable_reason() -> str | None:
    if not enabled():
        return "disabled by LUTNB_CKERNEL=0"
    if load() is None:
        return _errors.get(False, "unknown")
    return None


def simd_level(lib: ctypes.CDLL | None = None) -> int:
    """2: AVX-512 encode and vpermb/vpdpbusd look-up; 1: AVX-512 encode only; 0: portable loops."""
    lib = lib or load()
    return int(lib.lutnb_simd_level()) if lib is not None else -1


def can_encode(metric: str, v: int) -> bool:
    """Whether this kernel reproduces the torch encode bit for bit (L1/L2: v <= 4; Chebyshev: any v <= 64)."""
    return (metric == "chebyshev" and v <= MAX_V) or v <= 4


def pack_t4(tq8: np.ndarray) -> np.ndarray:
    """Tables (S, c<=16, N) int8 -> (G, N4, 64) int8: [g, n, 16*q + j] = tq8[4g+q, j, n], zero padded."""
    S, c, N = tq8.shape
    if c > 16:
        raise ValueError(f"c={c}: the packed look-up needs c <= 16")
    G, N4 = -(-S // 4), -(-N // 4) * 4
    t = np.zeros((G * 4, 16, N4), np.int8)
    t[:S, :c, :N] = tq8
    return np.ascontiguousarray(t.reshape(G, 4, 16, N4).transpose(0, 3, 1, 2).reshape(G, N4, 64))


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data


def _parallel(M: int, fn, rb: int = 64) -> None:
    """fn(begin, end) over ranges of M items (multiples of rb), on up to torch.get_num_threads() threads
    (ctypes drops the GIL); a nonzero return value is an allocation failure."""
    global _pool, _pool_size
    nthreads = max(1, min(torch.get_num_threads(), -(-M // rb)))
    if nthreads == 1:
        rc = fn(0, M)
        if rc:
            raise MemoryError(f"lutnb C kernel returned {rc}")
        return
    with _lock:
        if _pool is None or _pool_size < nthreads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="lutnb-ck")
            _pool_size = nthreads
    chunk = -(-M // nthreads)
    chunk = -(-chunk // rb) * rb
    starts = list(range(0, M, chunk))
    futs = [_pool.submit(fn, m0, min(M, m0 + chunk)) for m0 in starts[1:]]
    rcs = [fn(0, min(M, chunk))]  # the calling thread takes the first range itself
    rcs += [f.result() for f in futs]
    for rc in rcs:
        if rc:
            raise MemoryError(f"lutnb C kernel returned {rc}")


class Job(ctypes.Structure):
    """One layer call for `lutnb_job_q8` / `lutnb_job_f32` (lutgemm.c, struct lutnb_job): the input and its conv
    geometry (kh = 0: rows given), the encode's arrays, the tables, and the fused epilogue (dequantize, BatchNorm
    alpha/beta, residual add, ReLU, float output y and/or the next layer's uint8 input yq at scale qs)."""

    _fields_ = ([("x", ctypes.c_void_p)]
                + [(f, ctypes.c_int64) for f in ("H", "W", "C", "kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw", "Ho",
                                                 "Wo", "Kp")]
                + [("c2", ctypes.c_void_p), ("cinit", ctypes.c_void_p), ("cb", ctypes.c_void_p)]
                + [(f, ctypes.c_int64) for f in ("K", "v", "metric", "cb_finite", "S", "c")]
                + [("tq8", ctypes.c_void_p), ("t4", ctypes.c_void_p), ("N", ctypes.c_int64),
                   ("wrap_bits", ctypes.c_int64)]
                + [(f, ctypes.c_void_p) for f in ("scale", "bias", "alpha", "beta")]
                + [("bn_fma", ctypes.c_int64), ("relu", ctypes.c_int64), ("res", ctypes.c_void_p),
                   ("ldr", ctypes.c_int64), ("y", ctypes.c_void_p), ("ldy", ctypes.c_int64),
                   ("yq", ctypes.c_void_p), ("ldq", ctypes.c_int64),
                   ("qs", ctypes.c_float), ("xs", ctypes.c_float)])


def run_job(fn, job: Job, M: int, ref=None) -> int:
    """fn(job, begin, end) (`lib.lutnb_job_q8` or `lib.lutnb_job_f32`) over M output rows on up to
    torch.get_num_threads() threads; returns the OR of the flags (bit 0: an output value NaN/inf; bit 1: an input
    value NaN/inf: float rows read by the kernel). ref: ``ctypes.byref(job)``, kept by a caller that reuses job."""
    ref = ref if ref is not None else ctypes.byref(job)
    nthreads = torch.get_num_threads()
    if M <= 64 or nthreads == 1:
        rc = fn(ref, 0, M)
        if rc < 0:
            raise MemoryError(f"lutnb C kernel returned {rc}")
        return rc
    lib = _lib_of.get(id(fn))
    if lib is not None and shares_torch_pool(lib):  # torch's OpenMP workers run the row ranges: one pool
        rc = lib.lutnb_job_par(0 if fn is lib.lutnb_job_q8 else 1, ref, M, min(nthreads, -(-M // 64)))
        if rc < 0:
            raise MemoryError(f"lutnb C kernel returned {rc}")
        return rc
    flags = []

    def part(a, b):
        rc = fn(ref, a, b)
        flags.append(rc)
        return 0 if rc >= 0 else rc

    _parallel(M, part)
    out = 0
    for f in flags:
        out |= f
    return out


def affine(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, fma: bool, lib: ctypes.CDLL | None = None,
           ) -> torch.Tensor:
    """x * alpha + beta over the last dim of a contiguous float32 x (C's float32, fmaf when fma)."""
    lib = lib or load()
    x, alpha, beta = (t.detach().float().contiguous() for t in (x, alpha, beta))
    out = torch.empty_like(x)
    lib.lutnb_affine_f32(x.data_ptr(), x.numel(), x.shape[-1], alpha.data_ptr(), beta.data_ptr(), int(fma),
                         out.data_ptr())
    return out


def encode(rows: np.ndarray, cb: np.ndarray, metric: str, lib: ctypes.CDLL | None = None) -> np.ndarray:
    """idx (M, S) int64 for rows (M, K) float32 (K <= S*v, zero-padded) and codebooks (S, c, v) float32."""
    lib = lib or load()
    rows = np.ascontiguousarray(rows, np.float32)
    cb = np.ascontiguousarray(cb, np.float32)
    M, K = rows.shape
    S, c, v = cb.shape
    idx = np.empty((M, S), np.int64)
    if M and S:
        finite = int(np.isfinite(cb).all())
        _parallel(M, lambda a, b: lib.lutnb_encode(_ptr(rows), K, _ptr(cb), S, c, v, METRIC_CODES[metric],
                                                   finite, a, b, _ptr(idx)))
    return idx


def fused(rows: np.ndarray, cb: np.ndarray, tq8: np.ndarray, metric: str, wrap_bits: int,
          t4: np.ndarray | None = None, need_idx: bool = True, lib: ctypes.CDLL | None = None,
          scale: np.ndarray | None = None, bias: np.ndarray | None = None,
          ) -> tuple[np.ndarray | None, np.ndarray]:
    """(idx (M, S) int64 or None, acc (M, N) int64) with acc wrapped to wrap_bits when 0 < wrap_bits < 32.

    tq8: (S, c, N) int8 tables; t4: `pack_t4(tq8)` (computed here when None and the SIMD look-up applies).
    With ``scale`` (N,) float32 (and optionally ``bias``) the second result is instead the dequantized float32
    output ``float32(acc) * scale + bias``, bit-identical to `lutnb.vq.quant.dequantize`.
    """
    lib = lib or load()
    rows = np.ascontiguousarray(rows, np.float32)
    cb = np.ascontiguousarray(cb, np.float32)
    tq8 = np.ascontiguousarray(tq8, np.int8)
    M, K = rows.shape
    S, c, v = cb.shape
    N = tq8.shape[2]
    if t4 is None and simd_level(lib) >= 2 and c <= 16:
        t4 = pack_t4(tq8)
    idx = np.empty((M, S), np.int64) if need_idx else None
    out, y, scale, bias = _out_args(M, N, scale, bias)
    if M and S and N:
        finite = int(np.isfinite(cb).all())
        _parallel(M, lambda a, b: lib.lutnb_fused(_ptr(rows), K, _ptr(cb), S, c, v, METRIC_CODES[metric], finite,
                                                  _ptr(tq8), _ptr(t4), N, wrap_bits, a, b, _ptr(idx), _ptr(out),
                                                  _ptr(scale), _ptr(bias), _ptr(y)))
    else:
        _fill_empty(out, y, bias)
        if idx is not None:
            idx[:] = 0 if not (M and S) else encode(rows, cb, metric, lib)
    return idx, (out if y is None else y)


def _fill_empty(out, y, bias) -> None:
    """The outputs of an empty problem (no rows, sub-spaces or columns): zero accumulators, or the bias where
    the output is dequantized."""
    (out if y is None else y)[:] = 0
    if y is not None and bias is not None:
        y[:] = bias


def fused_q8(xu: np.ndarray, c2: np.ndarray, cinit: np.ndarray, tq8: np.ndarray, wrap_bits: int,
             t4: np.ndarray | None = None, need_idx: bool = False, lib: ctypes.CDLL | None = None,
             scale: np.ndarray | None = None, bias: np.ndarray | None = None,
             ) -> tuple[np.ndarray | None, np.ndarray]:
    """`fused` with the INT8 encode of `lutnb.deploy.q8` (v <= 4): xu (M, S) uint32 (4 bytes xq + 128 per sub-space),
    c2 (S, c) uint32 (4 bytes -2*cq), cinit (S, c) int32 (||cq||^2 + 256 sum(cq)); same outputs as `fused`."""
    lib = lib or load()
    xu = np.ascontiguousarray(xu, np.uint32)
    c2 = np.ascontiguousarray(c2, np.uint32)
    cinit = np.ascontiguousarray(cinit, np.int32)
    tq8 = np.ascontiguousarray(tq8, np.int8)
    M, S = xu.shape
    S2, c, N = tq8.shape
    if S2 != S or c2.shape != (S, c) or cinit.shape != (S, c):
        raise ValueError(f"fused_q8: xu (M, S={S}), c2/cinit (S, c) and tables (S, c, N) disagree: "
                         f"{xu.shape}, {c2.shape}, {cinit.shape}, {tq8.shape}")
    if t4 is None and simd_level(lib) >= 2 and c <= 16:
        t4 = pack_t4(tq8)
    idx = np.empty((M, S), np.int64) if need_idx else None
    out, y, scale, bias = _out_args(M, N, scale, bias)
    if M and S and N:
        _parallel(M, lambda a, b: lib.lutnb_fused_q8(_ptr(xu), _ptr(c2), _ptr(cinit), S, c, _ptr(tq8), _ptr(t4), N,
                                                     wrap_bits, a, b, _ptr(idx), _ptr(out), _ptr(scale), _ptr(bias),
                                                     _ptr(y)))
    else:
        _fill_empty(out, y, bias)
        if idx is not None:
            idx[:] = 0
    return idx, (out if y is None else y)


def quantize_u8(x: torch.Tensor, s, out: torch.Tensor, lib: ctypes.CDLL | None = None) -> bool:
    """`lutnb.deploy.q8.quantize_u8` in C: x contiguous float32 (..., run) into out (uint8, the same leading shape and
    run, rows `out.stride(-2)` bytes apart: a view into a wider buffer); returns whether x is all finite."""
    lib = lib or load()
    run = x.shape[-1]
    n_rows = x.numel() // max(run, 1)
    if not x.is_contiguous() or x.dtype != torch.float32 or out.dtype != torch.uint8 or out.stride(-1) != 1:
        raise ValueError("quantize_u8: x must be contiguous float32 and out uint8 with unit stride in the last dim")
    if out.dim() < 2 or out.numel() != x.numel() or any(out.stride(i) != out.stride(i + 1) * out.shape[i + 1]
                                                         for i in range(out.dim() - 2)):
        raise ValueError("quantize_u8: out must be rows of `run` bytes at one stride")
    bad = []
    if n_rows and run:
        def part(a, b):
            bad.append(lib.lutnb_quantize_u8(x.data_ptr() + 4 * a * run, b - a, run, ctypes.c_float(float(s)),
                                             out.data_ptr() + a * out.stride(-2), out.stride(-2)))
            return 0
        _parallel(n_rows, part, rb=256)
    return not any(bad)


def quantize_ptr(src_ptr: int, n_rows: int, run: int, s, dst_ptr: int, lib: ctypes.CDLL) -> bool:
    """`quantize_u8` on raw addresses: n_rows x run contiguous float32 values at src_ptr into as many bytes at
    dst_ptr, on up to torch.get_num_threads() threads (torch's OpenMP pool where shared); False on a NaN / inf."""
    sf = ctypes.c_float(float(s))
    nthreads = max(1, min(torch.get_num_threads(), -(-n_rows // 1024)))
    if nthreads == 1:
        return lib.lutnb_quantize_u8(src_ptr, n_rows, run, sf, dst_ptr, run) == 0
    if shares_torch_pool(lib):
        return lib.lutnb_quantize_par(src_ptr, n_rows, run, sf, dst_ptr, run, nthreads) == 0
    bad = []

    def part(a, b):
        bad.append(lib.lutnb_quantize_u8(src_ptr + 4 * a * run, b - a, run, sf, dst_ptr + a * run, run))
        return 0

    _parallel(n_rows, part, rb=256)
    return not any(bad)


def im2col_u8(xq: torch.Tensor, kernel_size, stride, padding, dilation, Kp: int, out: torch.Tensor,
              lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """Rows (B*Ho*Wo, Kp) uint8, K ordered (kh, kw, C), from a contiguous NHWC uint8 input (128 = zero)."""
    lib = lib or load()
    B, H, W, C = xq.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    M = B * Ho * Wo
    if not xq.is_contiguous() or not out.is_contiguous() or out.numel() != M * Kp or Kp < kh * kw * C:
        raise ValueError(f"im2col_u8: need a contiguous NHWC input and a contiguous ({M}, {Kp}) output")
    if M:
        _parallel(M, lambda a, b: lib.lutnb_im2col_u8(xq.data_ptr(), H, W, C, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo,
                                                      Kp, a, b, out.data_ptr()) or 0, rb=64)
    return out.view(M, Kp)


def _out_args(M: int, N: int, scale, bias):
    if scale is not None:
        scale = np.ascontiguousarray(scale, np.float32)
        bias = None if bias is None else np.ascontiguousarray(bias, np.float32)
        if scale.shape != (N,) or (bias is not None and bias.shape != (N,)):
            raise ValueError(f"scale and bias must have shape ({N},)")
        return None, np.empty((M, N), np.float32), scale, bias
    return np.empty((M, N), np.int64), None, None, None


def lookup(idx: np.ndarray, tq8: np.ndarray, wrap_bits: int, t4: np.ndarray | None = None,
           scale: np.ndarray | None = None, bias: np.ndarray | None = None, lib: ctypes.CDLL | None = None,
           ) -> np.ndarray:
    """The look-up half of `fused` for given codes idx (M, S) in [0, c): acc (M, N) int64, or the dequantized
    float32 output with ``scale`` (and ``bias``)."""
    lib = lib or load()
    idx = np.ascontiguousarray(idx, np.int64)
    tq8 = np.ascontiguousarray(tq8, np.int8)
    S, c, N = tq8.shape
    M = idx.shape[0]
    if idx.ndim != 2 or idx.shape[1] != S:
        raise ValueError(f"idx must be (M, S={S}); got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= c):
        raise IndexError(f"indices must be in [0, {c})")
    if t4 is None and simd_level(lib) >= 2 and c <= 16:
        t4 = pack_t4(tq8)
    out, y, scale, bias = _out_args(M, N, scale, bias)
    if M and N and S:
        _parallel(M, lambda a, b: lib.lutnb_lookup(_ptr(idx), S, c, _ptr(tq8), _ptr(t4), N, wrap_bits, a, b,
                                                   _ptr(out), _ptr(scale), _ptr(bias), _ptr(y)))
    else:
        _fill_empty(out, y, bias)
    return out if y is None else y


def table_sum(idx: torch.Tensor, tables: torch.Tensor, bias: torch.Tensor | None = None,
              lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """y (M, N) float32 = sum_s tables[s, idx[:, s]] (+ bias), summed over s in order (float look-up)."""
    lib = lib or load()
    idx = idx.to(torch.int64).contiguous()
    T = tables.detach().float().contiguous()
    S, c, N = T.shape
    M = idx.shape[0]
    y = torch.empty(M, N, dtype=torch.float32)
    b = None if bias is None else bias.detach().float().contiguous()
    if M and N:
        _parallel(M, lambda a, e: lib.lutnb_table_sum_f32(idx.data_ptr(), T.data_ptr(), S, c, N,
                                                          None if b is None else b.data_ptr(), a, e, y.data_ptr()))
    return y


def table_scatter(idx: torch.Tensor, dy: torch.Tensor, S: int, c: int, lib: ctypes.CDLL | None = None,
                  ) -> torch.Tensor:
    """Gradient of `table_sum` w.r.t. the tables: G (S, c, N), G[s, j] = sum of dy[m] over idx[m, s] == j."""
    lib = lib or load()
    idx = idx.to(torch.int64).contiguous()
    dy = dy.detach().float().contiguous()
    M, N = dy.shape
    G = torch.zeros(S, c, N, dtype=torch.float32)
    if M and N and S:
        _parallel(S, lambda a, e: lib.lutnb_table_scatter_f32(idx.data_ptr(), dy.data_ptr(), M, S, c, N, a, e,
                                                              G.data_ptr()), rb=1)
    return G


def pack_int8(tq: np.ndarray, lib, packed: dict) -> dict:
    """Fill packed['tq8'] (int8 tables, None when they do not fit int8) and packed['t4'] (pack_t4 layout,
    None where the SIMD look-up does not apply) once; returns packed."""
    if "tq8" not in packed:
        fits = tq.size == 0 or int(np.abs(tq.astype(np.int64)).max()) <= 127
        packed["tq8"] = np.ascontiguousarray(tq, np.int8) if fits else None
        packed["t4"] = (pack_t4(packed["tq8"]) if fits and tq.shape[1] <= 16 and simd_level(lib) >= 2
                        else None)
    return packed
