"""Transformers as LUT models: a Hugging Face BERT built from a config (conversion, engine), fidelity metrics, refit."""
import warnings

import pytest
import torch
from torch import nn

import lutnb
from lutnb.boosting import distill, embeddings, refit
from lutnb.codesign import workloads
from lutnb.vq.layers import LUTLayer, lut_layers, set_mode
from lutnb.zoo import minilm

transformers = pytest.importorskip("transformers")

LINEAR_SUFFIXES = minilm.ENCODER_LINEARS


@pytest.fixture(scope="module")
def tiny_bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32)
    return transformers.BertModel(cfg, add_pooling_layer=False).eval()


def _batches(n=3, B=4, L=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, 100, (B, L), generator=g)
        mask = torch.ones(B, L, dtype=torch.long)
        mask[0, 6:] = 0  # one padded sentence
        mask[1, 4:] = 0
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def _converted(model, v=4, c=8, metric="l2"):
    lm = lutnb.convert(model, v, c, metric)
    lutnb.calibrate(lm, _batches(), iters=5)
    return lm


def test_every_encoder_linear_converted_embeddings_and_layernorm_float(tiny_bert):
    lm = lutnb.convert(tiny_bert, 4, 8, "l2")
    names = {r.name for r in lm.lut_summary.converted}
    expected = {f"encoder.layer.{i}.{s}" for i in range(2) for s in LINEAR_SUFFIXES}
    assert names == expected
    assert set(minilm.encoder_linear_names(tiny_bert)) == expected
    assert not any(isinstance(m, LUTLayer) for m in lm.embeddings.modules())
    lns = [m for m in lm.modules() if isinstance(m, nn.LayerNorm)]
    assert len(lns) == 1 + 2 * 2 and all(type(m) is nn.LayerNorm for m in lns)
    assert isinstance(lm.embeddings.word_embeddings, nn.Embedding)


def test_skip_glob_crosses_dots_as_documented(tiny_bert):
    # convert()'s docstring: "*.output.dense" also matches attention.output.dense; "*.layer.?.output.dense"
    # keeps only the MLP output float
    def floats(pattern):
        lm = lutnb.convert(tiny_bert, 4, 8, "l2", skip=[pattern])
        return {r.name for r in lm.lut_summary.layers if r.status == "skipped"}

    both = {f"encoder.layer.{i}.{s}" for i in range(2) for s in ("attention.output.dense", "output.dense")}
    assert floats("*.output.dense") == both
    assert floats("*.layer.?.output.dense") == {f"encoder.layer.{i}.output.dense" for i in range(2)}


def test_forward_in_every_mode_and_exact_equals_fp32(tiny_bert):
    lm = _converted(tiny_bert)
    b = _batches(1, seed=3)[0]
    with torch.no_grad():
        ref = tiny_bert(**b).last_hidden_state
        for mode in ("exact", "lut", "soft", "quant"):
            set_mode(lm, mode)
            out = lm(**b).last_hidden_state
            assert out.shape == ref.shape and torch.isfinite(out).all()
            if mode == "exact":
                torch.testing.assert_close(out, ref)
            else:
                assert not torch.equal(out, ref)


def test_calibrate_with_dict_batches_sequential(tiny_bert):
    lm = lutnb.convert(tiny_bert, 4, 8, "l1")
    stats = lutnb.calibrate(lm, _batches(), iters=3, sequential=True)
    assert all(bool(m.calibrated) for _, m in lut_layers(lm))
    assert len([k for k in stats if not k.startswith("_")]) == 12


def test_integer_engine_matches_quant_mode(tiny_bert):
    lm = _converted(tiny_bert, metric="chebyshev")
    set_mode(lm, "quant")
    b = _batches(1, seed=5)[0]
    with torch.no_grad():
        q = lm(**b).last_hidden_state
        e = lutnb.IntegerEngine(lm, acc_bits=None)(**b).last_hidden_state
    assert torch.equal(q, e)


def test_block_refit_calibrates_and_beats_kmeans(tiny_bert):
    batches = _batches(4, B=8, L=12)
    lm = lutnb.convert(tiny_bert, 4, 8, "l2")
    stats = refit.block_refit(lm, tiny_bert, batches, iters=5, ridge=1e-3)
    layers = [k for k in stats if not k.startswith("_")]
    assert len(layers) == 12 and all(bool(m.calibrated) for _, m in lut_layers(lm))
    assert all(stats[k]["recon_rel"] <= stats[k]["recon_rel_kmeans"] + 1e-9 for k in layers)
    assert all(stats[k]["rows"] == sum(int(b["attention_mask"].sum()) for b in batches) for k in layers)
    base = lutnb.convert(tiny_bert, 4, 8, "l2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lutnb.calibrate(base, batches, iters=5)
    ref = embeddings.sentence_embeddings(tiny_bert, batches)
    f_refit = embeddings.fidelity(ref, embeddings.sentence_embeddings(lm, batches, mode="lut"))
    f_base = embeddings.fidelity(ref, embeddings.sentence_embeddings(base, batches, mode="lut"))
    assert f_refit["mean_cos"] > f_base["mean_cos"]


def test_block_refit_residual_target(tiny_bert):
    batches = _batches(4, B=8, L=12)
    plain, fixed = (lutnb.convert(tiny_bert, 4, 8, "l2") for _ in range(2))
    s_plain = refit.block_refit(plain, tiny_bert, batches, iters=5, ridge=1e-3)
    s_fixed = refit.block_refit(fixed, tiny_bert, batches, iters=5, ridge=1e-3, residual=minilm.BERT_RESIDUALS)
    # block 0's attention output joins the embeddings, which are the same in both models: the same target
    first = "encoder.layer.0.attention.output.dense"
    assert s_fixed[first]["recon_rel"] == pytest.approx(s_plain[first]["recon_rel"], rel=1e-6)
    assert torch.allclose(fixed.get_submodule(first).weight, plain.get_submodule(first).weight, atol=1e-6)
    # later ones also correct the residual stream: the last hidden states end closer to the teacher's
    with torch.no_grad():
        ref = [embeddings.last_hidden(embeddings.run_model(tiny_bert, b)) for b in batches]
        err = {name: sum(float((embeddings.last_hidden(embeddings.run_model(m, b)) - r).pow(2).sum())
                         for b, r in zip(batches, ref))
               for name, m in (("plain", plain), ("fixed", fixed))}
    assert err["fixed"] < err["plain"]
    with pytest.raises(ValueError, match="target='teacher'"):
        refit.block_refit(lutnb.convert(tiny_bert, 4, 8), tiny_bert, batches, target="self",
                      residual=minilm.BERT_RESIDUALS)
    with pytest.raises(ValueError, match="no module 'nope'"):
        refit.block_refit(lutnb.convert(tiny_bert, 4, 8), tiny_bert, batches, residual={"output.dense": "nope"})
    with pytest.raises(ValueError, match="no LUT layer"):
        refit.block_refit(lutnb.convert(tiny_bert, 4, 8), tiny_bert, batches,
                          residual={"output.dens": "output.LayerNorm"})


def test_block_refit_refuses_uncalibrated_layers_outside_blocks():
    from lutnb.zoo.vit import vit_digits

    m = vit_digits()
    with pytest.raises(ValueError, match="outside"):
        refit.block_refit(lutnb.convert(m, 4, 8), m, [torch.randn(2, 1, 8, 8)], blocks="blocks")


def test_mean_pool_ignores_padding():
    h = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(embeddings.mean_pool(h, mask), h[:, :2].mean(1))


def test_fidelity_and_spearman():
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 8, generator=g)
    b = a + 0.3 * torch.randn(20, 8, generator=g)
    f = embeddings.fidelity(a, a)
    assert f["mean_cos"] == pytest.approx(1.0) and f["min_cos"] == pytest.approx(1.0)
    assert f["spearman"] == pytest.approx(1.0)
    na, nb = nn.functional.normalize(a, dim=-1), nn.functional.normalize(b, dim=-1)
    iu = torch.triu_indices(20, 20, 1)
    expected = spearmanr((na @ na.T)[iu[0], iu[1]].numpy(), (nb @ nb.T)[iu[0], iu[1]].numpy())[0]
    assert embeddings.pairwise_spearman(a, b) == pytest.approx(expected, abs=1e-9)
    assert embeddings.fidelity(a, b)["min_cos"] <= embeddings.fidelity(a, b)["mean_cos"] < 1
    with pytest.raises(ValueError):
        embeddings.pairwise_spearman(a, b[:5])


def test_distill_embeddings_runs_and_lowers_the_loss(tiny_bert):
    batches = _batches(1, B=8, L=10)
    lm = lutnb.convert(tiny_bert, 8, 2, "l2")
    lutnb.calibrate(lm, batches, iters=3)
    for _, m in lut_layers(lm):  # spoil the centroids: distillation must pull them back
        m.codebooks.data.mul_(0.2)
    hist = distill.distill_embeddings(lm, tiny_bert, batches, steps=15, lr=2e-3, train_weights=False,
                                 backward="soft")
    assert len(hist) == 15 and all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert all(p.requires_grad for p in lm.parameters())
    assert all(m.mode == "lut" and m.backward == "exact" for _, m in lut_layers(lm))
    with pytest.raises(ValueError, match="centroids"):
        distill.distill_embeddings(lm, tiny_bert, batches, steps=1, train_weights=False)


def test_distill_embeddings_hidden_term_carries_gradient(tiny_bert):
    # the token-state MSE must reach the weights: with it the run must differ from the cosine-only run
    batches = _batches(1, B=8, L=10)
    base = _converted(tiny_bert)
    out = {}
    for hw in (0.0, 1.0):
        lm = _converted(tiny_bert)
        lm.load_state_dict(base.state_dict())
        distill.distill_embeddings(lm, tiny_bert, batches, steps=3, lr=1e-3, hidden_weight=hw)
        out[hw] = torch.cat([p.detach().flatten() for p in lm.parameters()])
    assert not torch.equal(out[0.0], out[1.0])


def test_transformer_workloads_mark_attention_products_dense(tiny_bert):
    b = _batches(1, B=2, L=9)[0]
    works = workloads.transformer_workloads(tiny_bert, b)
    lin = [w for w in works if w.kind == "linear"]
    dense = [w for w in works if w.kind == "attention_dense"]
    real = int(b["attention_mask"].sum())
    assert len(lin) == 12 and all(w.M == real for w in lin)
    assert {(w.K, w.N) for w in lin} == {(32, 32), (32, 64), (64, 32)}
    assert len(dense) == 2 * 4 * 2 * 2  # layers x heads x sentences x (qk, av)
    lengths = b["attention_mask"].sum(1).tolist()
    assert {(w.M, w.K, w.N) for w in dense if ".qk" in w.name} == {(t, 8, t) for t in lengths}
    try:
        wl = workloads.as_workload("tiny_bert", works)
    except ImportError:
        return
    assert sum(r for r, d in zip(wl.repeats, wl.dense) if d) == len(dense)


def test_corpus_splits():
    tr, ho = minilm.load_sentences("train"), minilm.load_sentences("heldout")
    assert len(tr) == 3000 and len(ho) == 600 and not set(tr) & set(ho)
    assert len(minilm.load_sentences("pairs")) == 600
    assert minilm.load_sentences("train", 5) == tr[:5]
    with pytest.raises(ValueError):
        minilm.load_sentences("test")


def test_minilm_offline_36_linears_and_embeddings_match_sentence_transformers():
    pytest.importorskip(minilm.MINILM_PACKAGE)
    tok, model = minilm.load_minilm()
    assert len(minilm.encoder_linear_names(model)) == 36
    lm = lutnb.convert(model, 2, 16, "l2")
    assert len(lm.lut_summary.converted) == 36
    sents = minilm.load_sentences("heldout", 6)
    ours = embeddings.sentence_embeddings(model, minilm.token_batches(tok, sents, 3, sort_by_length=False))
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(minilm.minilm_path()), device="cpu").encode(sents, convert_to_tensor=True)
    assert nn.functional.cosine_similarity(ours, ref.float()).min() > 0.9999
