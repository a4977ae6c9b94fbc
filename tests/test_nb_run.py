"""SMOKE and FULL kept apart (lutnb.nb.run): where figures and results go, the SMOKE stamp, FULL provenance."""
import json

import pytest
from PIL import Image

from lutnb.nb import run
from lutnb.nb.figures import plt, savefig
from lutnb.nb.results import write_results


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LUTNB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("LUTNB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUTNB_REFERENCE", str(tmp_path / "reference_results"))
    monkeypatch.setenv("LUTNB_COMMAND", "python -m lutnb.reproduce --full --only 99")
    monkeypatch.delenv("LUTNB_SMOKE", raising=False)
    run.end_run()
    yield tmp_path
    run.end_run()


def _fig(title="accuracy"):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.suptitle(title)
    return fig


def test_smoke_savefig_lands_in_smoke_folder_with_stamp(dirs):
    run.begin_run("99_toy", {"SMOKE": True, "SEED": 3})
    fig = _fig()
    paths = savefig(fig, "fig99_toy")
    assert paths["png"] == dirs / "figures" / "_smoke" / "fig99_toy.png" and paths["pdf"].exists()
    assert not list((dirs / "figures").glob("fig99_toy.*")), "a SMOKE figure must not land in figures/"
    texts = [t.get_text() for t in fig.texts]
    assert "SMOKE" in texts, texts                                     # the watermark
    assert "SMOKE" in fig._suptitle.get_text() and "accuracy" in fig._suptitle.get_text()
    assert "SMOKE" in Image.open(paths["png"]).info["Description"]     # and in the file's metadata
    savefig(fig, "fig99_toy")                                          # saving twice stamps once
    assert [t.get_text() for t in fig.texts].count("SMOKE") == 1
    plt.close(fig)
    write_results("99_toy", {"x": 1.5})
    assert json.loads((dirs / "results" / "99_toy.json").read_text()) == {"x": 1.5}
    assert not (dirs / "reference_results" / "99_toy.json").exists()


def test_full_write_carries_provenance(dirs):
    run.begin_run("99_toy", {"SMOKE": False, "SEED": 3, "SEEDS": [0, 1]})
    fig = _fig()
    paths = savefig(fig, "fig99_toy")
    assert paths["png"] == dirs / "figures" / "fig99_toy.png"
    assert "SMOKE" not in [t.get_text() for t in fig.texts]
    plt.close(fig)
    write_results("99_toy", {"x": 1.5})
    ref = json.loads((dirs / "reference_results" / "99_toy.json").read_text())
    assert ref == json.loads((dirs / "results" / "99_toy.json").read_text())
    assert ref["x"] == 1.5
    prov = ref["provenance"]
    assert prov["mode"] == "FULL" and prov["notebook"] == "99_toy"
    assert prov["command"] == "python -m lutnb.reproduce --full --only 99"
    assert prov["seeds"] == [0, 1, 3]
    assert prov["parameters"]["SEED"] == 3 and prov["parameters"]["SMOKE"] is False
    assert prov["date_utc"].endswith("+00:00")
    assert prov["wall_seconds"] >= 0
    assert {"platform", "cpu", "cpu_count", "python", "gpus"} <= set(prov["machine"])
    assert prov["commit"] is None or len(prov["commit"]) == 40


def test_mode_unknown_is_refused_for_figures(dirs):
    fig = _fig()
    with pytest.raises(ValueError, match="SMOKE or FULL is not known"):
        savefig(fig, "fig99_toy")
    savefig(fig, "fig99_toy", smoke=True)                              # explicit mode works without a run
    assert (dirs / "figures" / "_smoke" / "fig99_toy.png").exists()
    plt.close(fig)
    write_results("99_tool", {"y": 2})                                 # tools without a run: results/ only
    assert not (dirs / "reference_results" / "99_tool.json").exists()
    with pytest.raises(ValueError, match="no boolean SMOKE"):
        run.begin_run("99_toy", {"SEED": 0})
