"""The collection as a whole: the README gallery's figure list <-> notebooks, and determinism of results."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def notebook_savefigs():
    """{figure stem: notebook number} from every savefig(..., "figNN_...") call in the notebooks."""
    found = {}
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        src = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"])
        for stem in re.findall(r"savefig\([^)]*?[\"'](fig\d\d\w*)[\"']", src):
            found[stem] = nb_path.name[:2]
    return found


def test_gallery_figure_list_matches_notebooks():
    """The README gallery's figure list (`lutnb.nb.gallery.FIGURES`) names every figure a notebook saves, with the
    notebook that saves it and the paper figure number in the file name (a letter may follow: fig14b, fig06b)."""
    from lutnb.nb.gallery import FIGURES

    saved = notebook_savefigs()
    for stem, num, _topic, nb in FIGURES:
        assert stem in saved, f"the gallery lists {stem} but no notebook saves it"
        assert saved[stem] == nb[:2], f"the gallery says {stem} comes from notebook {nb}, it comes from {saved[stem]}"
        if num[0].isdigit():
            assert re.match(rf"fig{int(num.split()[0]):02d}[a-z]?_", stem), f"{stem} does not carry figure {num}"
    unlisted = sorted(set(saved) - {stem for stem, *_ in FIGURES})
    assert not unlisted, f"notebooks save figures the gallery does not list: {unlisted}"


@pytest.mark.notebook
def test_same_seed_gives_identical_results(run_notebook, tmp_path):
    """Running a notebook twice with the same seed writes identical results JSON (CPU)."""
    first = run_notebook("04_simulate_accelerator")
    second = run_notebook("04_simulate_accelerator")
    first.pop("_figures")
    second.pop("_figures")
    assert first == second


def test_every_notebook_begins_a_run():
    """Each notebook calls begin_run("NN_name", globals()), so its figures and results know SMOKE from FULL."""
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        src = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"])
        assert f'begin_run("{nb_path.stem}", globals())' in src, f"{nb_path.name} does not call begin_run"
