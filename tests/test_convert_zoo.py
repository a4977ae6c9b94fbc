"""A small model zoo through lutnb.convert (issue 17): GPT-2 (transformers Conv1D, lm_head tied to wte), BERT,
DistilBERT, T5 (tied lm_head) built from tiny configs (no download), and aliased / tied toy models.

For every converted layer, its "lut"-mode output on the inputs it really received equals a float64 hand
reference built from its codebooks: nearest centroid by brute force in float64, then the sum of the table
rows T_s = C_s W_s^T (+ bias). Only float rounding is allowed: a float32 encode may pick another centroid only
where the two are tied to float32 precision in float64."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lutnb
from lutnb.vq.layers import LUTLayer, LUTLinear, lut_layers, set_mode

transformers = pytest.importorskip("transformers")

VOCAB = 50


def _ids(seed, B=2, L=7):
    return torch.randint(0, VOCAB, (B, L), generator=torch.Generator().manual_seed(seed))


def _gpt2():
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=16,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg), lambda s: {"input_ids": _ids(s)}


def _bert():
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=16)
    return transformers.BertModel(cfg), lambda s: {"input_ids": _ids(s)}


def _distilbert():
    cfg = transformers.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                                        max_position_embeddings=16)
    return transformers.DistilBertModel(cfg), lambda s: {"input_ids": _ids(s)}


def _t5():
    cfg = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                                decoder_start_token_id=0)
    return transformers.T5ForConditionalGeneration(cfg), lambda s: {"input_ids": _ids(s),
                                                                      "decoder_input_ids": _ids(s + 100, L=5)}


ZOO = {"gpt2": _gpt2, "bert": _bert, "distilbert": _distilbert, "t5": _t5}


def hand_reference(layer: LUTLayer, rows: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """float64 output of `layer` in "lut" mode for input rows (M, K); idx (M, S): the layer's own codes, used
    only where float64 brute force finds a tie within float32 rounding (checked here)."""
    assert layer.metric == "l2"
    cb = layer.codebooks.detach().double()
    W = layer.weight_matrix().detach().double()
    S, v, K = layer.S, layer.v, layer.K
    x = F.pad(rows.double(), (0, S * v - K)).reshape(-1, S, v)
    d = ((x.unsqueeze(2) - cb.unsqueeze(0)) ** 2).sum(-1)  # (M, S, c) brute force
    ref_idx = d.argmin(-1)
    differ = ref_idx != idx
    if differ.any():  # allowed only at float32 near-ties
        gap = d.gather(2, idx.unsqueeze(-1))[..., 0] - d.min(-1).values
        scale = (x ** 2).sum(-1) + (cb ** 2).sum(-1).amax(-1)
        assert bool((gap[differ] <= 1e-5 * scale[differ] + 1e-9).all()), "a non-nearest centroid was picked"
        ref_idx = torch.where(differ, idx, ref_idx)
    T = torch.einsum("scv,nsv->scn", cb, F.pad(W, (0, S * v - K)).reshape(-1, S, v))
    y = torch.zeros(x.shape[0], layer.N, dtype=torch.float64)
    for s in range(S):
        y += T[s, ref_idx[:, s]]
    b = layer.bias
    return y if b is None else y + b.detach().double()


def check_every_layer_against_the_hand_reference(lm: nn.Module, run) -> int:
    """Run `run()` in "lut" mode with hooks; compare each LUT layer's output with `hand_reference`."""
    seen = {}

    def hook(name):
        def fn(module, inputs, output):
            rows = module.rows_of(inputs[0].detach()).clone()
            out = output.detach().reshape(-1, module.N) if isinstance(module, LUTLinear) else \
                output.detach().flatten(2).transpose(1, 2).reshape(-1, module.N)
            seen.setdefault(name, []).append((rows, module.last_indices.clone(), out.clone()))
        return fn

    set_mode(lm, "lut", keep_indices=True)
    hooks = [m.register_forward_hook(hook(n)) for n, m in lut_layers(lm)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
        set_mode(lm, "lut", keep_indices=False)
    layers = dict(lut_layers(lm))
    assert set(seen) == set(layers), f"layers never run: {set(layers) - set(seen)}"
    for name, calls in seen.items():
        for rows, idx, out in calls:
            ref = hand_reference(layers[name], rows, idx)
            torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5 * (1 + float(ref.abs().max())),
                                       msg=lambda m, name=name: f"{name}: {m}")
    return len(seen)


@pytest.mark.parametrize("arch", list(ZOO))
def test_zoo_model_lut_layers_equal_the_float64_hand_reference(arch):
    torch.manual_seed(0)
    model, batch = ZOO[arch]()
    model.eval()
    lm = lutnb.convert(model, 4, 8)
    summary = lm.lut_summary
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
               or type(m).__name__ == "Conv1D"]
    assert {r.name for r in summary.converted} == set(linears)  # every Linear / Conv1D converted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lutnb.calibrate(lm, [batch(s) for s in range(3)], iters=3)
    n = check_every_layer_against_the_hand_reference(lm, lambda: lm(**batch(7)))
    assert n == len(summary.converted)
    # exact mode is the float model again
    set_mode(lm, "exact")
    with torch.no_grad():
        a, b = model(**batch(9)), lm(**batch(9))
    key = "logits" if "logits" in a else "last_hidden_state"
    torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", list(ZOO))
@pytest.mark.parametrize("impl", ["fast", "native"])
def test_zoo_model_integer_engine_equals_quant_mode(arch, impl):
    torch.manual_seed(1)
    model, batch = ZOO[arch]()
    model.eval()
    lm = lutnb.convert(model, 4, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lutnb.calibrate(lm, [batch(s) for s in range(3)], iters=3)
    set_mode(lm, "quant")
    with torch.no_grad():
        want = lm(**batch(11))
    got = lutnb.IntegerEngine(lm, impl=impl)(**batch(11))
    key = "logits" if "logits" in want else "last_hidden_state"
    assert torch.equal(got[key], want[key])


def test_gpt2_conv1d_becomes_a_transposed_lut_linear_and_lm_head_stays_tied():
    torch.manual_seed(0)
    model, _ = _gpt2()
    lm = lutnb.convert(model, 4, 8)
    c_attn_f, c_attn = model.transformer.h[0].attn.c_attn, lm.transformer.h[0].attn.c_attn
    assert isinstance(c_attn, LUTLinear) and (c_attn.in_features, c_attn.out_features) == (32, 96)
    assert torch.equal(c_attn.weight, c_attn_f.weight.t()) and torch.equal(c_attn.bias, c_attn_f.bias)
    rep = {r.name: r for r in lm.lut_summary.converted}
    r = rep["transformer.h.0.attn.c_attn"]
    assert r.kind == "Conv1D" and "transposed" in r.note
    assert lm.lm_head.weight is lm.transformer.wte.weight  # the tie survives conversion
    assert "tied with transformer.wte" in rep["lm_head"].note
    x = torch.randn(3, 5, 32)
    set_mode(lm, "exact")
    torch.testing.assert_close(c_attn(x), c_attn_f(x), rtol=1e-6, atol=1e-6)


def test_t5_lm_head_tie_is_kept_when_the_config_ties_it():
    model, _ = _t5()
    lm = lutnb.convert(model, 4, 8)
    tied = model.lm_head.weight is model.shared.weight
    assert (lm.lm_head.weight is lm.shared.weight) == tied


# --- aliased and tied toy models ------------------------------------------------------------------------


class Aliased(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = self.a  # the same module under a second name
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.b(torch.relu(self.a(x)))))


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.c = nn.Linear(8, 8)
        self.c.weight = self.a.weight  # two layers, one weight Parameter
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.c(torch.relu(self.a(x)))))


def test_aliased_module_is_replaced_under_every_name():
    torch.manual_seed(0)
    model = Aliased()
    lm = lutnb.convert(model, 4, 4)
    assert isinstance(lm.a, LUTLinear) and lm.a is lm.b
    s = lm.lut_summary
    assert [r.name for r in s.converted] == ["a", "head"] and s.converted[0].aliases == ["b"]
    assert "also replaced under 1 alias name" in str(s) and "also replaced as b" in str(s)
    x = torch.randn(64, 8)
    lutnb.calibrate(lm, [x], iters=3)
    check_every_layer_against_the_hand_reference(lm, lambda: lm(x[:10]))
    set_mode(lm, "exact")
    with torch.no_grad():
        torch.testing.assert_close(lm(x), model(x))


def test_aliased_module_skipped_under_either_name():
    lm = lutnb.convert(Aliased(), 4, 4, skip=["b"])
    assert type(lm.a) is nn.Linear and lm.a is lm.b


def test_tied_weights_stay_tied_through_convert_calibrate_and_training():
    torch.manual_seed(0)
    model = Tied()
    lm = lutnb.convert(model, 4, 4)
    assert lm.a.weight is lm.c.weight and lm.a.weight is not model.a.weight
    assert "weight tied with c" in {r.name: r for r in lm.lut_summary.converted}["a"].note
    assert len(list(lm.parameters())) == len(list(model.parameters())) + 3  # + one codebook per LUT layer
    x = torch.randn(64, 8)
    lutnb.calibrate(lm, [x], iters=3)
    check_every_layer_against_the_hand_reference(lm, lambda: lm(x[:10]))
    opt = torch.optim.SGD(lm.parameters(), lr=0.1)
    lm(x).pow(2).mean().backward()
    opt.step()
    assert lm.a.weight is lm.c.weight and not torch.equal(lm.a.weight, model.a.weight)


def test_tied_weight_with_one_side_skipped_stays_tied():
    lm = lutnb.convert(Tied(), 4, 4, skip=["c"])
    assert isinstance(lm.a, LUTLinear) and type(lm.c) is nn.Linear and lm.a.weight is lm.c.weight


def test_inplace_conversion_of_aliased_and_tied_models():
    model = Tied()
    model.alias = model.a
    out = lutnb.convert(model, 4, 4, inplace=True)
    assert out is model and model.alias is model.a and model.a.weight is model.c.weight
