"""The functional simulation (CCM -> FIFO -> IMM in LS order) is bit-identical to lutnb.deploy.engine."""
import numpy as np
import pytest
import torch

from lutnb.deploy import engine
from lutnb.deploy.export import random_layer
from lutnb.hw import LUTDLAConfig, simulate_layer_functional


@pytest.mark.parametrize("seed", range(6))
def test_functional_equals_integer_engine(seed):
    g = np.random.default_rng(seed)
    metric = ("l2", "l1", "chebyshev")[seed % 3]
    v, c, bits = int(g.integers(1, 6)), int(g.choice([4, 8, 16])), int(g.integers(4, 17))
    K, N, M = int(g.integers(1, 40)), int(g.integers(1, 30)), int(g.integers(1, 50))
    layer = random_layer(K, N, v=v, c=c, metric=metric, table_bits=bits, seed=seed)
    acc_bits = int(g.choice([bits + 2, 16, 32]))
    cfg = LUTDLAConfig(c=c, v=v, metric=metric, table_bits=bits, acc_bits=max(acc_bits, bits), ccus=3,
                       lanes=4,
                       fifo_depth=7, table_tile=int(g.integers(1, 9)), table_buffer_bytes=1 << 16,
                       m_tile=int(g.integers(1, 20)))
    x = torch.from_numpy(g.standard_normal((M, K)).astype(np.float32))
    res = simulate_layer_functional(layer, x, cfg, acc_bits=cfg.acc_bits)
    idx = engine.encode_rows(engine.im2col(x, layer).float(), layer)
    assert np.array_equal(res["indices"], idx.numpy())
    assert np.array_equal(res["acc"], engine.lookup_accumulate(idx, layer, acc_bits=cfg.acc_bits).numpy())
    assert torch.equal(res["output"], engine.run_layer(layer, x, acc_bits=cfg.acc_bits))
    assert res["fifo_max_occupancy"] <= cfg.fifo_depth
