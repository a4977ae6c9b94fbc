import os
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute notebooks/<name>.ipynb in SMOKE mode; return its results JSON (a dict).

    figures/, results/ and data/reference_results/ are redirected to a temporary folder so tests never touch the
    real ones. `_figures` lists the SMOKE figures (figures/_smoke/); a SMOKE run that writes a figure outside
    _smoke/ or a reference JSON fails here.
    """
    from lutnb.files import repo_root
    from lutnb.nb.reproduce import run_notebook as _run
    from lutnb.nb.results import read_results

    res, figs, ref = tmp_path / "results", tmp_path / "figures", tmp_path / "reference_results"
    monkeypatch.setenv("LUTNB_RESULTS", str(res))
    monkeypatch.setenv("LUTNB_FIGURES", str(figs))
    monkeypatch.setenv("LUTNB_REFERENCE", str(ref))
    monkeypatch.setenv("TQDM_DISABLE", "1")

    def _go(name: str, **params):
        params.setdefault("SMOKE", True)
        params.setdefault("SEED", 0)
        _run(repo_root() / "notebooks" / f"{name}.ipynb", params, tmp_path / "executed")
        out = read_results(name, res)
        smoke = figs / "_smoke"
        out["_figures"] = sorted(p.name for p in smoke.glob("*") if p.is_file()) if smoke.exists() else []
        if params["SMOKE"]:
            outside = sorted(p.name for p in figs.glob("*") if p.is_file()) if figs.exists() else []
            assert not outside, f"SMOKE run of {name} wrote figures outside figures/_smoke/: {outside}"
            refs = sorted(p.name for p in ref.glob("*")) if ref.exists() else []
            assert not refs, f"SMOKE run of {name} wrote reference results: {refs}"
        return out

    return _go


def assert_reproducible(run_notebook, name: str, first: dict, **params) -> None:
    """Run notebook `name` again with the same parameters and assert its results JSON equals `first`,
    timing fields aside (`lutnb.nb.results.is_timing`): same seed, same numbers."""
    from lutnb.nb.results import differences, is_timing

    second = run_notebook(name, **params)
    diff = [d for d in differences(first, second) if not is_timing(d[0])]
    assert not diff, f"two runs of {name} with the same seed differ:\n" + "\n".join(
        f"{'/'.join(map(str, p))}: {str(a)[:80]} != {str(b)[:80]}" for p, a, b in diff[:10])


def seed_proxy_results(directory) -> None:
    """Write notebook-01-style proxy accuracy records into `directory` (a results folder) so DSE/explorer tests
    read a proxy instead of measuring it.

    The numbers are test fixtures (a monotone toy table), not results; tests that use them check wiring only.
    """
    import pandas as pd

    from lutnb.codesign.accuracy import RECORDS_SUBDIR
    from lutnb.experiments.accuracy import proxy_records_from_sweep, write_accuracy_records

    sweep = [{"method": "VQ", "metric": m, "v": v, "c": c, "rel_error": min(0.95, 0.3 * v / c ** 0.5 + 0.02 * i)}
             for i, m in enumerate(("l2", "l1", "chebyshev")) for v in (1, 2, 4, 8) for c in (4, 8, 16, 32, 64)]
    write_accuracy_records("01_vector_quantization", proxy_records_from_sweep(pd.DataFrame(sweep)),
                           Path(directory) / RECORDS_SUBDIR)


@pytest.fixture(scope="module")
def seeded_results(tmp_path_factory):
    """LUTNB_RESULTS -> a module-wide temporary folder holding the toy proxy table (see seed_proxy_results)."""
    mp = pytest.MonkeyPatch()
    res = tmp_path_factory.mktemp("results")
    seed_proxy_results(res)  # toy proxy table: these tests check wiring, not the proxy measurement
    mp.setenv("LUTNB_RESULTS", str(res))
    yield res
    mp.undo()


@pytest.fixture(scope="module")
def trained():
    """The tiny CNN of tests/test_boosting.py trained on its toy data (test_boosting, test_gpu_ready, test_cuda)."""
    from test_boosting import Tiny, _data

    from lutnb.zoo.train import fit

    torch.manual_seed(0)
    m = Tiny()
    fit(m, _data(), epochs=12, lr=2e-2, batch_size=32, progress=False)
    return m.eval()
