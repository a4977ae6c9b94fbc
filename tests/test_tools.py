"""tools/run_06_full.py: two parts run side by side must not lose each other's rows."""
import importlib.util
import json
import multiprocessing as mp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("run_06_full", ROOT / "tools" / "run_06_full.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _writer(path: str, model: str, n: int, barrier) -> None:
    mod = _load()
    mod.OUT = Path(path)
    barrier.wait(60)  # start together, so the read-merge-writes overlap
    rows = []
    meta = {"started": model, "command": model}
    for i in range(n):  # what main() does: append a row, save everything so far
        rows.append({"model": model, "metric": "l2", "v": 2, "c": 16, "seed": i, "payload": "x" * 20000})
        mod._save(rows, meta)


N = 60


def test_parallel_saves_keep_every_row(tmp_path):
    # without the lock in _save this loses rows (checked by removing it: 3 of 3 runs failed)
    out = tmp_path / "06.json"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(out), m, N, barrier)) for m in ("vit_digits", "minilm")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    d = json.loads(out.read_text())
    got = sorted((r["model"], r["seed"]) for r in d["rows"])
    assert got == sorted((m, i) for m in ("minilm", "vit_digits") for i in range(N))
    assert sorted(r["started"] for r in d["runs"]) == ["minilm", "vit_digits"]


def test_compare_results_separates_timing_from_real_differences(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("compare_results", ROOT / "tools" / "compare_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "a.json").write_text(json.dumps({"seconds": 1.0, "acc": [0.9, 0.8], "cfg": {"v": 4}}))
    (new / "a.json").write_text(json.dumps({"seconds": 2.5, "acc": [0.9, 0.8], "cfg": {"v": 4}}))
    assert mod.compare(old, new) == 0
    (new / "a.json").write_text(json.dumps({"seconds": 2.5, "acc": [0.9, 0.7], "cfg": {"v": 4, "c": 16}}))
    assert mod.compare(old, new) == 1
    out = capsys.readouterr().out
    assert "acc.1: 0.8 -> 0.7" in out and "cfg.c: <absent> -> 16" in out and "1 timing values differ" in out


def test_minilm_heldout_source_refuses_a_shared_source(capsys):
    import pytest

    spec = importlib.util.spec_from_file_location("mh", ROOT / "tools" / "minilm_heldout_source.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit):
        mod._args(["--cal", "packages", "pydoc", "--eval", "pydoc"])
    assert "held-out source" in capsys.readouterr().err
    a = mod._args([])
    assert not set(a.cal) & set(a.eval) and a.n_eval >= 2000
