"""lutnb.vq: vector quantization and LUT layers, the algorithm of the paper.

``distances`` (L2, L1, Chebyshev; nearest-centroid encode), ``quant`` (INT-b tables), ``functional``
(autograd functions, im2col), ``layers`` (LUTLinear, LUTConv2d), ``conversion`` (convert any model),
``calibration`` (k-means codebooks), ``lutgemm`` (the LUT GEMM written to be read: the reference every
fast path is tested against), ``error`` (scalar vs vector quantization error).
"""
from .calibration import calibrate, kmeans
from .conversion import ConversionSummary, convert
from .distances import METRICS, chebyshev, encode, l1, l2, pairwise_distance
from .layers import (
    LUTConv2d,
    LUTLayer,
    LUTLinear,
    codebook_params,
    equivalent_bits,
    lut_layers,
    reconstruction_loss,
    set_mode,
)
from .lutgemm import build_tables, encode_reference, lookup_add, lut_gemm

__all__ = ["METRICS", "ConversionSummary", "LUTConv2d", "LUTLayer", "LUTLinear", "build_tables", "calibrate",
           "chebyshev", "codebook_params", "convert", "encode", "encode_reference", "equivalent_bits", "kmeans",
           "l1", "l2", "lookup_add", "lut_gemm", "lut_layers", "pairwise_distance", "reconstruction_loss",
           "set_mode"]
