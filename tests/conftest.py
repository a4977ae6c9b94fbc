import os

os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute notebooks/<name>.ipynb in SMOKE mode; return its results JSON (a dict).

    figures/ and results/ are redirected to a temporary folder so tests never touch the real ones.
    """
    from lutnb.paths import repo_root
    from lutnb.reproduce import run_notebook as _run
    from lutnb.results import read_results

    res, figs = tmp_path / "results", tmp_path / "figures"
    monkeypatch.setenv("LUTNB_RESULTS", str(res))
    monkeypatch.setenv("LUTNB_FIGURES", str(figs))
    monkeypatch.setenv("TQDM_DISABLE", "1")

    def _go(name: str, **params):
        params.setdefault("SMOKE", True)
        params.setdefault("SEED", 0)
        _run(repo_root() / "notebooks" / f"{name}.ipynb", params, tmp_path / "executed")
        out = read_results(name, res)
        out["_figures"] = sorted(p.name for p in figs.glob("*")) if figs.exists() else []
        return out

    return _go
