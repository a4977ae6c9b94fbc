"""lutnb.kernels: the CPU kernels under everything, and the one place that picks one.

Array in, array out: these modules know tensors and NumPy arrays, never layers, models or files.
``common`` (metric names and codes, accumulator wrap-around), ``compiled`` (the C kernel, built on first
use), ``numba_jit`` (the numba kernels, imported on first use), ``numba_kernels`` (their entry points and
exactness contract), ``dispatch`` (torch / numba / C).
"""
from . import common, compiled, dispatch, numba_kernels
from .common import METRICS, check_acc_bits, check_metric, wrap

__all__ = ["METRICS", "check_acc_bits", "check_metric", "common", "compiled", "dispatch", "numba_kernels", "wrap"]
