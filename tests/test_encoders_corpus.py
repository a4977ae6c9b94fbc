"""Shipped-text corpus, neighbour recall, ridge chosen on held-out rows, and `lutnb.convert_encoder`."""
import math

import pytest
import torch

import lutnb
from lutnb.boosting import embeddings
from lutnb.experiments import encoders
from lutnb.vq.layers import lut_layers
from lutnb.zoo import corpus

transformers = pytest.importorskip("transformers")


# ------------------------------------------------------------------------------------------------ corpus
def test_sentence_filter_keeps_prose_and_drops_code():
    text = ("The module keeps a cache of loaded objects for later use. Call :func:`foo.bar` to reset it.\n\n"
            ">>> x = foo()\n\nReturns\n-------\nout : ndarray\n    The result.\n\n"
            "A short one. This sentence has a_variable name inside it somewhere. "
            "Each tree in the forest votes and the majority class is returned to the caller.")
    got = corpus.split_sentences(text)
    assert got == ["The module keeps a cache of loaded objects for later use.",
                   "Each tree in the forest votes and the majority class is returned to the caller."]
    assert not corpus.is_sentence("A short one.")


def test_pydoc_source_is_deterministic_distinct_and_large():
    a, b = corpus.load_corpus("pydoc"), corpus.load_corpus("pydoc")
    assert a.sentences == b.sentences and len(a.sentences) > 500
    assert len({s.lower() for s in a.sentences}) == len(a.sentences)
    assert a.summary()["source"] == "pydoc"


def test_sample_excludes_and_is_seeded():
    pool = corpus.sample_sentences("datasets", None, seed=0)
    first = corpus.sample_sentences("datasets", 10, seed=3)
    assert first == corpus.sample_sentences("datasets", 10, seed=3) and len(first) == 10
    rest = corpus.sample_sentences("datasets", None, seed=3, exclude=first)
    assert not set(first) & set(rest) and len(rest) == len(pool) - 10


def test_unknown_source_names_the_choices():
    with pytest.raises(ValueError, match="pydoc"):
        corpus.load_corpus("wikipedia")


# ------------------------------------------------------------------------------------------------ metrics
def _slow_recall(a, b, k):
    a, b = torch.nn.functional.normalize(a.double(), dim=-1), torch.nn.functional.normalize(b.double(), dim=-1)
    total = 0
    for i in range(a.shape[0]):
        da = sorted((j for j in range(a.shape[0]) if j != i), key=lambda j: -float(a[i] @ a[j]))[:k]
        db = sorted((j for j in range(a.shape[0]) if j != i), key=lambda j: -float(b[i] @ b[j]))[:k]
        total += len(set(da) & set(db))
    return total / (a.shape[0] * k)


def test_neighbour_recall_equals_slow_reference_and_bounds():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 6, generator=g)
    b = a + 0.5 * torch.randn(40, 6, generator=g)
    assert embeddings.neighbour_recall(a, b, 5, chunk=7) == pytest.approx(_slow_recall(a, b, 5))
    assert embeddings.neighbour_recall(a, a, 5) == 1.0
    assert embeddings.fidelity(a, b)["recall10"] == pytest.approx(_slow_recall(a, b, 10))
    with pytest.raises(ValueError, match="k="):
        embeddings.neighbour_recall(a, b, 40)


# ------------------------------------------------------------------------------------------------ refit
class _OneBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(8, 3))])

    def forward(self, x):
        return self.blocks[0](x)


def test_ridge_candidates_pick_the_best_on_held_out_rows():
    torch.manual_seed(0)
    teacher = _OneBlock()
    batches = [torch.randn(100, 8) for _ in range(4)]
    student = lutnb.convert(teacher, 2, 4, "l2")
    stats = lutnb.block_refit(student, teacher, batches, "blocks", ridge=[1e-6, 1e-2, 1e3], iters=5)
    s = stats["blocks.0.0"]
    vals = s["ridge_val_rel"]
    assert set(vals) == {"1e-06", "0.01", "1000"} and s["ridge"] == float(min(vals, key=vals.get))
    # the final solve uses every row: the same fit as asking for the winning ridge alone
    alone = lutnb.convert(teacher, 2, 4, "l2")
    one = lutnb.block_refit(alone, teacher, batches, "blocks", ridge=s["ridge"], iters=5)["blocks.0.0"]
    assert "ridge_val_rel" not in one and one["recon_rel"] == pytest.approx(s["recon_rel"])
    assert torch.allclose(alone.blocks[0][0].weight, student.blocks[0][0].weight, atol=1e-6)


@pytest.mark.parametrize("ridge", [[1e-3, -1.0], [], -2.0])
def test_ridge_validated(ridge):
    teacher = _OneBlock()
    with pytest.raises(ValueError, match="ridge"):
        lutnb.block_refit(lutnb.convert(teacher, 2, 4), teacher, [torch.randn(4, 8)], "blocks", ridge=ridge)


# ------------------------------------------------------------------------------------------------ API
class _Tok:
    """A whitespace tokenizer with the call signature `token_batches` uses (ids from a hash, no files)."""

    def __call__(self, texts, padding=True, truncation=True, max_length=16, return_tensors="pt"):
        ids = [[2 + (sum(map(ord, w)) % 90) for w in t.split()][:max_length] for t in texts]
        L = max(map(len, ids))
        return {"input_ids": torch.tensor([x + [0] * (L - len(x)) for x in ids]),
                "attention_mask": torch.tensor([[1] * len(x) + [0] * (L - len(x)) for x in ids])}


@pytest.fixture(scope="module")
def tiny_bert_with_pooler():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=32)
    return transformers.BertModel(cfg, add_pooling_layer=True).eval()


def test_convert_encoder_keeps_pooler_float_and_reports(tiny_bert_with_pooler):
    model = tiny_bert_with_pooler
    sents = corpus.sample_sentences("datasets", 60, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lut = lutnb.convert_encoder(model, _Tok(), sents, v=4, c=8, max_length=16, progress=False)
    rep = lut.refit_report
    assert rep["blocks"] == "encoder.layer" and rep["kept_float"] == ["pooler.dense"]
    assert rep["residual"] == encoders.BERT_RESIDUALS and rep["sentences"] == 60
    assert len(list(lut_layers(lut))) == 12 and all(bool(m.calibrated) for _, m in lut_layers(lut))
    assert all(s["ridge"] in encoders.RIDGE_CANDIDATES for s in rep["layers"].values())
    assert rep["bits_per_act"] == math.log2(8) / 4
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is untouched


def test_convert_encoder_rejects_bad_sentences(tiny_bert_with_pooler):
    with pytest.raises(ValueError, match="sentences"):
        lutnb.convert_encoder(tiny_bert_with_pooler, _Tok(), "one string")
    with pytest.raises(ValueError, match="sentences"):
        lutnb.convert_encoder(tiny_bert_with_pooler, _Tok(), ["ok", ""])


def test_minilm_experiment_takes_own_sentences_and_returns_the_model(tiny_bert_with_pooler):
    from lutnb.experiments.transformers import minilm_experiment

    model = tiny_bert_with_pooler
    nopool = type(model)(model.config, add_pooling_layer=False).eval()
    nopool.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("pooler")})
    train = corpus.sample_sentences("datasets", 40, seed=0)
    held = corpus.sample_sentences("licenses", 30, seed=0)
    row, lut = minilm_experiment("l2", 4, 8, model=nopool, tokenizer=_Tok(), train_sentences=train,
                                 heldout_sentences=held, max_length=16, iters=3, return_model=True)
    assert row["n_train"] == 40 and row["n_heldout"] == 30 and row["layers_converted"] == 12
    assert 0 <= row["quant_recall10"] <= 1 and len(list(lut_layers(lut))) == 12
