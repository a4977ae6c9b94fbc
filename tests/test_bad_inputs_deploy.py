"""Bad inputs to the deploy side (tables files, write_hex, the integer engine), checkpoints, LUTBoost resume and
file modes: one parametrized case per bad input, each asserting the error type and the words that name the
problem (issue 17). Plus the valid-but-unusual inputs that must work: aliased layers in the engine, a model
that reads ``module.weight.dtype`` (as Hugging Face T5 does), a tiny T5 from a config, umask-respecting modes."""
import json
import os
import stat

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

import lutnb
from lutnb import boosting as B
from lutnb.deploy import engine
from lutnb.deploy.export import (
    ExportedModel,
    TablesFileError,
    export_tables,
    load_tables,
    random_layer,
    read_hex,
    save_tables,
    write_hex,
)
from lutnb.files import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint


# ------------------------------------------------------------------------------------------------ helpers
def _converted(model, x, **kw):
    torch.manual_seed(0)
    lm = lutnb.convert(model, **{"v": 4, "c": 8, "metric": "l2", **kw})
    lutnb.calibrate(lm, [x])
    lutnb.set_mode(lm, "quant")
    return lm.eval()


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))


X_NET = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def tables_file(tmp_path_factory):
    """A valid tables file with a conv layer '0' and a linear layer '3' (both with bias)."""
    lm = _converted(_net(), X_NET)
    return save_tables(export_tables(lm), tmp_path_factory.mktemp("tables") / "ok.npz")


def _entries(path):
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    meta = json.loads(bytes(d.pop("meta")).decode())
    return d, meta


def _write(path, arrays, meta=None, raw_meta=None):
    out = dict(arrays)
    out["meta"] = raw_meta if raw_meta is not None else np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **out)
    return path


def _layer_meta(meta, name):
    return next(m for m in meta["layers"] if m["name"] == name)


# -------------------------------------------------------------------------------- tables files: cases
def _missing(src, p):
    return p.parent / "nothing_here.npz"


def _folder(src, p):
    p.mkdir()
    return p


def _junk(src, p):
    p.write_bytes(b"this is not a zip archive at all" * 10)
    return p


def _empty(src, p):
    p.write_bytes(b"")
    return p


def _truncated(src, p):
    data = src.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _flipped(src, p):  # a bit flipped inside the compressed data of the first member
    data = bytearray(src.read_bytes())
    for i in range(60, 90):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    return p


def _single_npy(src, p):
    with open(p, "wb") as f:
        np.save(f, np.zeros(3))
    return p


def _edit(fn):
    """A case that loads the valid file's entries, edits (arrays, meta) with fn, and writes them back."""
    def case(src, p):
        arrays, meta = _entries(src)
        raw = fn(arrays, meta)
        return _write(p, arrays, meta, raw_meta=raw)
    return case


def _set_meta(name, key, value):
    def fn(arrays, meta):
        _layer_meta(meta, name)[key] = value
    return fn


def _drop_meta(name, key):
    def fn(arrays, meta):
        del _layer_meta(meta, name)[key]
    return fn


def _set_array(key, f):
    def fn(arrays, meta):
        arrays[key] = f(arrays[key])
    return fn


def _nan_at0(a):
    a = a.copy()
    a.reshape(-1)[0] = np.nan
    return a


def _inf_at0(a):
    a = a.copy()
    a.reshape(-1)[0] = np.inf
    return a


def _duplicate(arrays, meta):
    meta["layers"].append(dict(meta["layers"][0]))


def _bias_without_flag(arrays, meta):
    _layer_meta(meta, "3")["has_bias"] = False


def _extra_entry(arrays, meta):
    arrays["3/secret"] = np.zeros(2)


def _drop_entry(arrays, meta):
    del arrays["3/table_q"]


def _conv_in_channels(arrays, meta):
    _layer_meta(meta, "0")["conv"]["in_channels"] = 3


def _conv_no_stride(arrays, meta):
    del _layer_meta(meta, "0")["conv"]["stride"]


def _conv_neg_padding(arrays, meta):
    _layer_meta(meta, "0")["conv"]["padding"] = [-1, 1]


def _table_out_of_range(arrays, meta):
    t = arrays["3/table_q"].copy()
    t.reshape(-1)[0] = -128  # int8 holds it, the signed 8-bit table range [-127, 127] does not
    arrays["3/table_q"] = t


def _meta_not_json(arrays, meta):
    return np.frombuffer(b"{not json", dtype=np.uint8)


def _meta_format(arrays, meta):
    meta["format"] = "something-else"


def _meta_version(arrays, meta):
    meta["version"] = 2


def _meta_no_layers(arrays, meta):
    del meta["layers"]


TABLE_CASES = {
    "missing file": (_missing, FileNotFoundError, r"no tables file at"),
    "a folder": (_folder, TablesFileError, r"is not a file"),
    "junk bytes": (_junk, TablesFileError, r"not a lutnb tables file, or a damaged one"),
    "empty file": (_empty, TablesFileError, r"not a lutnb tables file, or a damaged one"),
    "truncated": (_truncated, TablesFileError, r"damaged one \(truncated or edited\)"),
    "bytes flipped": (_flipped, TablesFileError, r"damaged one \(truncated or edited\)"),
    "single .npy array": (_single_npy, TablesFileError, r"single array"),
    "meta not JSON": (_edit(_meta_not_json), TablesFileError, r"'meta' entry is not JSON"),
    "other format": (_edit(_meta_format), TablesFileError, r"format 'something-else' v1 is not 'lutnb-tables'"),
    "other version": (_edit(_meta_version), TablesFileError, r"v2 is not 'lutnb-tables' v1; re-export"),
    "meta without layers": (_edit(_meta_no_layers), TablesFileError, r"no 'layers' list"),
    "layer field missing": (_edit(_drop_meta("3", "c")), TablesFileError, r"missing \['c'\]"),
    "v is a string": (_edit(_set_meta("3", "v", "4")), TablesFileError, r"v='4' must be an integer"),
    "unknown kind": (_edit(_set_meta("3", "kind", "dense")), TablesFileError, r"kind='dense'"),
    "unknown metric": (_edit(_set_meta("3", "metric", "cosine")), TablesFileError, r"metric='cosine'"),
    "table_bits out of range": (_edit(_set_meta("3", "table_bits", 20)), TablesFileError, r"table_bits=20"),
    "unknown layout": (_edit(_set_meta("0", "layout", "rows")), TablesFileError, r"layout='rows'"),
    "declared K disagrees with codebooks": (_edit(_set_meta("3", "in_features", 96)), TablesFileError,
                                            r"codebooks shape \(25, 8, 4\) != \(S, c, v\) = \(24, 8, 4\)"),
    "declared S disagrees": (_edit(_set_meta("3", "S", 7)), TablesFileError, r"S=7 disagrees"),
    "declared N disagrees": (_edit(_set_meta("3", "out_features", 4)), TablesFileError, r"table_q shape"),
    "codebooks float64": (_edit(_set_array("3/codebooks", lambda a: a.astype(np.float64))), TablesFileError,
                          r"codebooks has dtype float64, the format stores float32"),
    "table_q int32": (_edit(_set_array("3/table_q", lambda a: a.astype(np.int32))), TablesFileError,
                      r"table_q has dtype int32, the format stores int8 for table_bits=8"),
    "table_q float": (_edit(_set_array("3/table_q", lambda a: a.astype(np.float32))), TablesFileError,
                      r"table_q has dtype float32"),
    "table_q wrong shape": (_edit(_set_array("3/table_q", lambda a: a[:, :4])), TablesFileError,
                            r"table_q shape \(25, 4, 3\) != \(S, c, N\)"),
    "table entry outside table_bits": (_edit(_table_out_of_range), TablesFileError,
                                       r"outside the signed 8-bit range \[-127, 127\]"),
    "scale too short": (_edit(_set_array("3/scale", lambda a: a[:-1])), TablesFileError,
                        r"scale shape \(2,\) != \(N,\)"),
    "bias too long": (_edit(_set_array("3/bias", lambda a: np.concatenate([a, a]))), TablesFileError,
                      r"bias shape \(6,\) != \(N,\)"),
    "scale NaN": (_edit(_set_array("3/scale", _nan_at0)), TablesFileError, r"scale holds 1 non-finite"),
    "bias inf": (_edit(_set_array("3/bias", _inf_at0)), TablesFileError, r"bias holds 1 non-finite"),
    "codebooks NaN": (_edit(_set_array("0/codebooks", _nan_at0)), TablesFileError, r"codebooks holds 1 non-finite"),
    "scale zero": (_edit(_set_array("3/scale", lambda a: a * 0)), TablesFileError, r"scale holds 3 value\(s\) <= 0"),
    "array entry missing": (_edit(_drop_entry), TablesFileError, r"entry '3/table_q' is missing"),
    "bias entry but has_bias false": (_edit(_bias_without_flag), TablesFileError, r"has_bias is false"),
    "unexpected entry": (_edit(_extra_entry), TablesFileError, r"unexpected entries \['3/secret'\]"),
    "layer listed twice": (_edit(_duplicate), TablesFileError, r"appears twice"),
    "conv in_channels disagrees with K": (_edit(_conv_in_channels), TablesFileError,
                                          r"in_features=18 != in_channels \* kh \* kw = 3 \* 3 \* 3"),
    "conv stride missing": (_edit(_conv_no_stride), TablesFileError, r"conv is missing \['stride'\]"),
    "conv negative padding": (_edit(_conv_neg_padding), TablesFileError, r"conv padding=\[-1, 1\] must be"),
}


@pytest.mark.parametrize("case", list(TABLE_CASES), ids=list(TABLE_CASES))
def test_bad_tables_file(case, tables_file, tmp_path):
    make, exc, words = TABLE_CASES[case]
    path = make(tables_file, tmp_path / "bad.npz")
    with pytest.raises(exc, match=words) as info:
        load_tables(path)
    msg = str(info.value)
    assert str(path) in msg, msg                            # the message names the file
    assert not isinstance(info.value, KeyError)
    assert "zipfile" not in msg.lower() or str(path) in msg


def test_valid_tables_file_still_round_trips_bit_for_bit(tables_file):
    back = load_tables(tables_file)
    lm = _converted(_net(), X_NET)
    want = export_tables(lm)
    for layer in want:
        got = back[layer.name]
        assert got.meta() == layer.meta()
        for f in ("codebooks", "table_q", "scale", "bias"):
            a, b = getattr(got, f), getattr(layer, f)
            assert np.array_equal(a, b) and a.dtype == b.dtype, f
    with torch.no_grad():
        assert torch.equal(engine.IntegerEngine(lm, exported=back)(X_NET), lm(X_NET))


# ------------------------------------------------------------------------------- write_hex, save, read_hex
def _one():
    return ExportedModel({"fc": random_layer(K=10, N=3, v=4, c=4, name="fc")})


def _file_dir(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    return f


HEX_CASES = {
    "codebook_bits=0": (lambda t: write_hex(_one(), t, codebook_bits=0), ValueError,
                        r"codebook_bits=0 is out of range"),
    "codebook_bits=1": (lambda t: write_hex(_one(), t, codebook_bits=1), ValueError,
                        r"codebook_bits=1 is out of range"),
    "codebook_bits='8'": (lambda t: write_hex(_one(), t, codebook_bits="8"), ValueError, r"codebook_bits='8'"),
    "codebook_bits=33": (lambda t: write_hex(_one(), t, codebook_bits=33), ValueError, r"from 2 to 32"),
    "write_hex of a layer": (lambda t: write_hex(_one()["fc"], t), TypeError,
                             r"got a ExportedLayer; pass an ExportedModel"),
    "write_hex into a file": (lambda t: write_hex(_one(), _file_dir(t)), NotADirectoryError, r"that path is a file"),
    "save_tables of a dict": (lambda t: save_tables({"fc": _one()["fc"]}, t / "x.npz"), TypeError,
                              r"save_tables\(exported=...\) got a dict"),
    "read_hex bits=0": (lambda t: read_hex(t / "x.hex", 0), ValueError, r"read_hex\(bits=0\)"),
    "read_hex of a non-hex file": (lambda t: read_hex(_file_dir(t), 8), ValueError, r"not a \$readmemh file"),
}


@pytest.mark.parametrize("case", list(HEX_CASES), ids=list(HEX_CASES))
def test_bad_export_arguments(case, tmp_path):
    call, exc, words = HEX_CASES[case]
    with pytest.raises(exc, match=words):
        call(tmp_path)


def test_write_hex_smallest_codebook_bits_works(tmp_path):
    files = write_hex(_one(), tmp_path, codebook_bits=2)
    cb = read_hex(next(f for f in files if f.name.endswith("codebook.hex")), 2)
    assert set(np.unique(cb)) <= {-1, 0, 1}


# ------------------------------------------------------------------------------------ engine: mismatches
def _lin(cin=8, cout=5, bias=True):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(cin, cout, bias=bias))


def _conv(k=3, stride=1, padding=1, dilation=1, cin=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(cin, 4, k, stride=stride, padding=padding, dilation=dilation))


XL = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
XL16 = torch.randn(5, 16, generator=torch.Generator().manual_seed(2))
XC = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(3))


def _pair(model_a, xa, model_b, xb, kw_a=None, kw_b=None):
    """(converted model A, tables exported from converted model B)."""
    a = _converted(model_a, xa, **(kw_a or {}))
    b = _converted(model_b, xb, **(kw_b or {}))
    return a, export_tables(b)


ENGINE_CASES = {
    "another K": (lambda: _pair(_lin(8), XL, _lin(16), XL16),
                  r"layer '0': in_features \(K\) is 16 in the tables, 8 in the model"),
    "another N": (lambda: _pair(_lin(8, 5), XL, _lin(8, 6), XL),
                  r"out_features \(N\) is 6 in the tables, 5 in the model"),
    "another v": (lambda: _pair(_lin(), XL, _lin(), XL, kw_b={"v": 2}), r"v is 2 in the tables, 4 in the model"),
    "another c": (lambda: _pair(_lin(), XL, _lin(), XL, kw_b={"c": 4}), r"c is 4 in the tables, 8 in the model"),
    "another metric": (lambda: _pair(_lin(), XL, _lin(), XL, kw_b={"metric": "l1"}),
                       r"metric is 'l1' in the tables, 'l2' in the model"),
    "bias vs none": (lambda: _pair(_lin(bias=False), XL, _lin(bias=True), XL),
                     r"has_bias is True in the tables, False in the model"),
    "linear tables for a conv": (lambda: _pair(nn.Sequential(nn.Conv2d(8, 5, 1)), torch.randn(2, 8, 3, 3),
                                               _lin(8, 5), XL),
                                 r"kind is 'linear' in the tables, 'conv2d' in the model"),
    "another stride": (lambda: _pair(_conv(stride=1), XC, _conv(stride=2), XC),
                       r"stride is \[2, 2\] in the tables, \[1, 1\] in the model"),
    "another padding": (lambda: _pair(_conv(padding=1), XC, _conv(padding=0), XC),
                        r"padding is \[0, 0\] in the tables, \[1, 1\] in the model"),
    "another dilation": (lambda: _pair(_conv(dilation=1), XC, _conv(dilation=2), XC),
                         r"dilation is \[2, 2\] in the tables, \[1, 1\] in the model"),
    "another kernel, same K": (lambda: _pair(_conv(k=(1, 3), padding=0), XC, _conv(k=(3, 1), padding=0), XC),
                               r"kernel_size is \[3, 1\] in the tables, \[1, 3\] in the model"),
    "another layout": (lambda: _pair(_conv(), XC, _conv(), XC, kw_b={"layout": "patch"}),
                       r"layout is 'patch' in the tables, 'channel' in the model"),
    "another layer name": (lambda: (_converted(_lin(), XL),
                                    ExportedModel({"fc": random_layer(K=8, N=5, v=4, c=8, metric="l2", name="fc")})),
                           r"missing \['0'\], unexpected \['fc'\]"),
}


@pytest.mark.parametrize("case", list(ENGINE_CASES), ids=list(ENGINE_CASES))
def test_engine_refuses_tables_of_another_model(case):
    make, words = ENGINE_CASES[case]
    model, tables = make()
    with pytest.raises(ValueError, match=words):
        engine.IntegerEngine(model, exported=tables)


ENGINE_ARG_CASES = {
    "exported is a dict": (lambda m: engine.IntegerEngine(m, exported={"0": None}), TypeError,
                           r"IntegerEngine\(exported=...\) got a dict; pass an ExportedModel"),
    "model is not a module": (lambda m: engine.IntegerEngine(m.state_dict()), TypeError,
                              r"IntegerEngine\(model=...\) got a"),
    "unknown impl": (lambda m: engine.IntegerEngine(m, impl="gpu"), ValueError, r"impl='gpu': use one of"),
    "acc_bits=0": (lambda m: engine.IntegerEngine(m, acc_bits=0), ValueError, r"acc_bits=0 is out of range"),
    "integer input": (lambda m: engine.IntegerEngine(m)(torch.ones(2, 8, dtype=torch.int64)), TypeError,
                      r"input dtype torch.int64 is not floating point"),
    "input with wrong width": (lambda m: engine.IntegerEngine(m)(torch.ones(2, 7)), ValueError,
                               r"input has 7 features, expected 8"),
}


@pytest.mark.parametrize("case", list(ENGINE_ARG_CASES), ids=list(ENGINE_ARG_CASES))
def test_bad_engine_arguments(case):
    call, exc, words = ENGINE_ARG_CASES[case]
    model = _converted(_lin(), XL)
    with pytest.raises(exc, match=words):
        call(model)


def test_engine_accepts_its_own_tables_at_another_table_width():
    lm = _converted(_lin(), XL)
    eng = engine.IntegerEngine(lm, exported=export_tables(lm, table_bits=6))
    assert eng(XL).shape == (5, 5)


def test_engine_output_follows_a_float64_input():
    lm = _converted(_lin(), XL)
    eng = engine.IntegerEngine(lm)
    y64 = eng(XL.double())
    assert y64.dtype == torch.float64 and torch.equal(y64, eng(XL).double())  # float32 arithmetic, cast back


# ------------------------------------------------------------------------ engine: what code expects of a layer
class ReadsWeightDtype(nn.Module):
    """Like T5's dense blocks: cast the activations to the next Linear's weight dtype."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 6)
        self.out = nn.Linear(6, 2, bias=False)

    def forward(self, x):
        h = torch.relu(self.lin(x))
        if isinstance(self.out.weight, torch.Tensor) and h.dtype != self.out.weight.dtype:
            h = h.to(self.out.weight.dtype)
        return self.out(h)


def test_engine_layer_exposes_weight_and_bias_and_equals_quant_mode():
    torch.manual_seed(0)
    m = ReadsWeightDtype()
    lm = _converted(m, XL)
    eng = engine.IntegerEngine(lm)
    with torch.no_grad():
        assert torch.equal(eng(XL), lm(XL))
    lay = eng.model.out
    assert isinstance(lay, engine.EngineLayer)
    assert lay.weight.dtype == torch.float32 and lay.weight.shape == (2, 6)
    assert torch.equal(lay.weight, lm.out.weight.detach())
    assert lay.bias is None and torch.equal(eng.model.lin.bias, torch.as_tensor(eng.exported["lin"].bias))
    assert lay.in_features == 6 and lay.out_features == 2
    assert not any(k.endswith("weight") for k in eng.state_dict())   # a stand-in, never saved


def test_engine_replaces_an_aliased_layer_under_every_name():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)  # replaced by an alias of `a` after conversion

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    torch.manual_seed(0)
    lm = _converted(Twice(), XL)
    lm.b = lm.a  # the same LUT layer under a second name
    eng = engine.IntegerEngine(lm)
    assert eng.model.a is eng.model.b and isinstance(eng.model.b, engine.EngineLayer)
    with torch.no_grad():
        assert torch.equal(eng(XL), lm(XL))


def test_tiny_t5_from_config_runs_on_the_engine():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                                num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    t5 = transformers.T5ForConditionalGeneration(cfg).eval()
    ids = torch.randint(1, 40, (2, 7), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "decoder_input_ids": ids[:, :5]}
    lm = lutnb.convert(t5, v=4, c=8, metric="l2")
    lutnb.calibrate(lm, [batch])
    lutnb.set_mode(lm, "quant")
    lm.eval()
    eng = engine.IntegerEngine(lm)
    with torch.no_grad():
        want = lm(**batch).logits
        got = eng(**batch).logits
    assert torch.equal(got, want)


# ------------------------------------------------------------------------------------------- checkpoints
class Custom:
    pass


def _ck_truncated(p):
    save_checkpoint({"a": torch.arange(1000)}, p)
    p.write_bytes(p.read_bytes()[:300])


def _ck_junk(p):
    p.write_bytes(os.urandom(64) + b"junk")


def _ck_empty(p):
    p.write_bytes(b"")


def _ck_pickle(p):
    torch.save({"obj": Custom()}, p)


def _ck_folder(p):
    p.mkdir()


CKPT_CASES = {
    "truncated": (_ck_truncated, r"is damaged or not a lutnb checkpoint"),
    "junk bytes": (_ck_junk, r"is damaged or not a lutnb checkpoint"),
    "empty file": (_ck_empty, r"is damaged or not a lutnb checkpoint"),
    "arbitrary pickled object": (_ck_pickle, r"holds objects other than tensors"),
    "a folder": (_ck_folder, r"is not a file"),
}


@pytest.mark.parametrize("case", list(CKPT_CASES), ids=list(CKPT_CASES))
def test_bad_checkpoint(case, tmp_path):
    make, words = CKPT_CASES[case]
    p = tmp_path / "stage.pt"
    make(p)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(p)
    msg = str(info.value)
    assert str(p) in msg and "weights_only" not in msg


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.pt")


# ---------------------------------------------------------------------------------------- LUTBoost resume
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _small(seed=0):
    torch.manual_seed(seed)
    return Small().eval()


DATA = TensorDataset(torch.randn(32, 6, generator=torch.Generator().manual_seed(0)),
                     torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(0)))
EMPTY = TensorDataset(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))


def _quick_cfg():
    return B.LUTBoostConfig((
        B.CalibrateStage(batches=1, batch_size=16, max_rows=64, iters=2, sequential=False, bn_reestimate=False),
        B.TrainStage("centroids", epochs=0, lr=1e-2, train_weights=False),
        B.TrainStage("joint", epochs=0, lr=1e-3),
        B.TrainStage("lut_qat", epochs=0, lr=1e-4, mode="quant"),
    ))


KW = dict(v=2, c=4, metric="l2", skip=(), stages=None, seed=0, progress=False)
OTHER_DATA = TensorDataset(DATA.tensors[0] + 0.5, DATA.tensors[1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("lutboost")
    lutnb.lutboost(_small(0), DATA, DATA, checkpoint_dir=d, **{**KW, "stages": _quick_cfg()})
    return d


RESUME_CASES = {
    "another fp32 model, same architecture": (dict(model=_small(1)), r"the fp32 model's weights \(state_dict hash\)"),
    "other overrides": (dict(overrides={"fc1": {"c": 2}}), r"overrides \(checkpoint None, now \{'fc1'"),
    "other layout": (dict(layout="patch"), r"layout \(checkpoint channel, now patch\)"),
    "a teacher": (dict(teacher=_small(2)), r"the teacher's weights \(checkpoint None, now [0-9a-f]+"),
    "other seed": (dict(seed=5), r"seed \(checkpoint 0, now 5\)"),
    "other training data": (dict(train=OTHER_DATA), r"the training data \(hash\)"),
    "other validation data": (dict(val=OTHER_DATA), r"the validation data \(hash\)"),
}


@pytest.mark.parametrize("case", list(RESUME_CASES), ids=list(RESUME_CASES))
def test_resume_refuses_another_run(case, run_dir):
    change, words = RESUME_CASES[case]
    kw = {**KW, "stages": _quick_cfg(), **change}
    model = kw.pop("model", _small(0))
    train, val = kw.pop("train", DATA), kw.pop("val", DATA)
    with pytest.raises(B.ResumeMismatchError, match=words) as info:
        lutnb.lutboost(model, train, val, checkpoint_dir=run_dir, resume=True, **kw)
    assert "use another checkpoint_dir or resume=False" in str(info.value)


def test_resume_with_the_same_inputs_is_accepted(run_dir):
    lut, rep = lutnb.lutboost(_small(0), DATA, DATA, checkpoint_dir=run_dir, resume=True,
                              **{**KW, "stages": _quick_cfg()})
    assert rep.resumed_from.endswith("stage3_lut_qat.pt")


def _damage_last(d):
    p = d / "stage3_lut_qat.pt"
    p.write_bytes(p.read_bytes()[:200])
    return p


def _not_a_stage(d):
    p = d / "stage3_lut_qat.pt"
    save_checkpoint({"model": {}}, p)
    return p


RESUME_FILE_CASES = {
    "damaged stage checkpoint": (_damage_last, r"is damaged or not a lutnb checkpoint"),
    "checkpoint without a fingerprint": (_not_a_stage, r"not a LUTBoost stage checkpoint"),
}


@pytest.mark.parametrize("case", list(RESUME_FILE_CASES), ids=list(RESUME_FILE_CASES))
def test_resume_from_a_bad_checkpoint(case, tmp_path):
    make, words = RESUME_FILE_CASES[case]
    d = tmp_path / "run"
    lutnb.lutboost(_small(0), DATA, DATA, checkpoint_dir=d, **{**KW, "stages": _quick_cfg()})
    p = make(d)
    with pytest.raises(CheckpointError, match=words) as info:
        lutnb.lutboost(_small(0), DATA, DATA, checkpoint_dir=d, resume=True, **{**KW, "stages": _quick_cfg()})
    assert str(p) in str(info.value) and "weights_only" not in str(info.value)


EMPTY_CASES = {
    "empty train": (dict(train=EMPTY), r"train= is empty \(0 examples\)"),
    "empty val": (dict(val=EMPTY), r"val= is empty \(0 examples\)"),
    "empty test": (dict(test=EMPTY), r"test= is empty \(0 examples\)"),
    "train is None": (dict(train=None), r"train=None: LUTBoost needs a train dataset"),
}


@pytest.mark.parametrize("case", list(EMPTY_CASES), ids=list(EMPTY_CASES))
def test_empty_datasets_refused_before_training(case, tmp_path, monkeypatch):
    from lutnb.boosting import runner

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(runner, "prepare_model", no_training)
    change, words = EMPTY_CASES[case]
    args = {"train": DATA, "val": DATA, "test": None, **change}
    with pytest.raises(ValueError, match=words):
        lutnb.lutboost(_small(0), args["train"], args["val"], test=args["test"], **{**KW, "stages": _quick_cfg()})


# ------------------------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_respect_the_umask(umask, tmp_path):
    old = os.umask(umask)
    try:
        paths = [atomic_write_bytes(tmp_path / "r.json", b"{}"),
                 save_tables(_one(), tmp_path / "t.npz"),
                 save_checkpoint({"x": torch.zeros(2)}, tmp_path / "c.pt")]
        (tmp_path / "old.json").write_bytes(b"")
        os.chmod(tmp_path / "old.json", 0o600)       # replacing an older file gives the same normal mode
        paths.append(atomic_write_bytes(tmp_path / "old.json", b"{}"))
    finally:
        os.umask(old)
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_atomic_write_to_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        atomic_write_bytes(tmp_path, b"x")


def test_case_counts():
    """At least 25 bad-input cases in this module (the issue's closing note lists them by category)."""
    n = (len(TABLE_CASES) + len(HEX_CASES) + len(ENGINE_CASES) + len(ENGINE_ARG_CASES) + len(CKPT_CASES)
         + len(RESUME_CASES) + len(RESUME_FILE_CASES) + len(EMPTY_CASES))
    assert n >= 25


@pytest.mark.parametrize("impl", ["fast", "reference", "native"])
def test_engine_propagates_nan_rows_like_quant_mode(impl):
    import lutnb

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(8, 5))
    lm = lutnb.convert(m, 4, 8, "l2")
    lutnb.calibrate(lm, [torch.randn(64, 8)])
    lutnb.set_mode(lm, "quant")
    x = torch.randn(6, 8)
    x[2, 3] = float("nan")
    x[4, 0] = float("inf")
    with torch.no_grad():
        want = lm(x)
    got = lutnb.IntegerEngine(lm, impl=impl)(x)
    assert torch.isnan(got[2]).all() and torch.isnan(got[4]).all()
    torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)
