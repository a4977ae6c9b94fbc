"""The notebook runner's command line: selection, typed -p overrides, --out, progress, the FULL-without-GPU
refusal and no kernel-transport warning (a two-cell notebook in a temporary repository, so it runs in seconds)."""
import json

import nbformat
import pytest

from lutnb.nb import reproduce


def _write_notebook(path, params_src):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['LUTNB_RESULTS'])\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'tiny.json').write_text(json.dumps({'SMOKE': SMOKE, 'SEED': SEED, 'V_LIST': V_LIST,"
        " 'METRIC': METRIC, 'SCALE': SCALE}))")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, str(path))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    src = 'SMOKE = False  # switch\nSEED = 0  # seed\nV_LIST = [1, 2]\nMETRIC = "l1"\nSCALE = 1.0\n'
    _write_notebook(tmp_path / "notebooks" / "01_tiny.ipynb", src)
    _write_notebook(tmp_path / "notebooks" / "02_other.ipynb", src)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False\nSEED = 0\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='inner-bar'):\n    pass\nprint('smoke is', SMOKE)")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, str(tmp_path / "notebooks" / "03_bars.ipynb"))
    monkeypatch.setenv("LUTNB_ROOT", str(tmp_path))
    return tmp_path


def test_only_by_number_prefix_and_glob(repo):
    names = lambda only: [p.stem for p in reproduce.select_notebooks(only)]  # noqa: E731
    assert names(["01"]) == ["01_tiny"]
    assert names(["1"]) == ["01_tiny"]
    assert names(["02_ot"]) == ["02_other"]
    assert names(["0[12]*"]) == ["01_tiny", "02_other"]
    assert names(None) == ["01_tiny", "02_other", "03_bars"]
    with pytest.raises(ValueError, match="--only '07' matches no notebook"):
        reproduce.select_notebooks(["07"])


def test_parameters_are_typed_by_the_parameters_cell(repo):
    path = repo / "notebooks" / "01_tiny.ipynb"
    assert reproduce.declared_parameters(path) == {"SMOKE": False, "SEED": 0, "V_LIST": [1, 2], "METRIC": "l1",
                                                   "SCALE": 1.0}
    over = [("SEED", "3"), ("V_LIST", "[2, 4]"), ("METRIC", "l2"), ("SCALE", "2"), ("SMOKE", "true")]
    got = reproduce.notebook_parameters(path, over, {"SMOKE": True, "SEED": 0})
    assert got == {"SMOKE": True, "SEED": 3, "V_LIST": [2, 4], "METRIC": "l2", "SCALE": 2.0}
    assert isinstance(got["SCALE"], float)
    with pytest.raises(ValueError, match=r"-p SEED 'one'.*SEED = 0 \(int\)"):
        reproduce.parse_value("SEED", "one", 0)
    with pytest.raises(ValueError, match="no selected notebook has a parameter NOPE"):
        reproduce.check_overrides([path], [("NOPE", "1")])


def test_cli_runs_one_notebook_with_progress_and_no_transport_warning(repo, tmp_path, capfd):
    out = tmp_path / "results_seed1"
    rc = reproduce.main(["--only", "01", "-p", "SEED", "1", "-p", "V_LIST", "[4]", "--out", str(out)])
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    assert json.loads((out / "tiny.json").read_text()) == {"SMOKE": True, "SEED": 1, "V_LIST": [4],
                                                            "METRIC": "l1", "SCALE": 1.0}
    assert (out / "executed" / "01_tiny.ipynb").exists()
    assert "notebooks: 100%" in cap.err and "01_tiny" in cap.err  # the bar over notebooks, the one over cells
    assert "01_tiny.ipynb: ok" in cap.out
    assert "without encryption" not in cap.err + cap.out


def test_bad_override_is_refused_before_running(repo, capfd):
    assert reproduce.main(["--only", "01", "-p", "SEED", "[1]"]) == 2
    assert "-p SEED '[1]'" in capfd.readouterr().err


def test_full_without_gpu_is_refused_unless_allowed(repo, monkeypatch, capfd):
    monkeypatch.setattr(reproduce, "gpu_available", lambda: False)
    assert reproduce.main(["--full", "--only", "01"]) == 2
    err = capfd.readouterr().err
    assert "torch.cuda.is_available() is False" in err and "--allow-cpu" in err


def test_full_streams_the_notebooks_own_bars(repo, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(reproduce, "gpu_available", lambda: False)
    monkeypatch.setenv("TQDM_DISABLE", "1")              # FULL turns the notebooks' bars back on
    rc = reproduce.main(["--full", "--allow-cpu", "--only", "03", "--out", str(tmp_path / "full")])
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    assert "inner-bar" in cap.err and "3/3" in cap.err   # the notebook's own tqdm bar, as text
    assert "smoke is False" in cap.err                    # its printed output, streamed
