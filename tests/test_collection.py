"""The collection as a whole: README figure table <-> notebooks <-> files, and determinism of results."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_figure_rows():
    """(paper figure number, notebook number, file stem) for every row of the README's figure table."""
    rows = []
    for line in README.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|[^|]*\|\s*(\d\d)\s*\|\s*`figures/(fig\w+)\.\{png,pdf\}`", line)
        if m:
            rows.append((int(m.group(1)), m.group(2), m.group(3)))
    return rows


def notebook_savefigs():
    """{figure stem: notebook number} from every savefig(..., "figNN_...") call in the notebooks."""
    found = {}
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        src = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"])
        for stem in re.findall(r"savefig\([^)]*?[\"'](fig\d\d\w*)[\"']", src):
            found[stem] = nb_path.name[:2]
    return found


def test_readme_figure_table_matches_notebooks():
    rows = readme_figure_rows()
    assert rows, "README has no figure table rows"
    saved = notebook_savefigs()
    for num, nb, stem in rows:
        assert stem.startswith(f"fig{num:02d}_"), f"README row {num}: file {stem} does not carry the figure number"
        assert stem in saved, f"README lists {stem} but no notebook saves it"
        assert saved[stem] == nb, f"README says {stem} comes from notebook {nb}, it comes from {saved[stem]}"
    listed = {stem for _, _, stem in rows}
    unlisted = sorted(s for s in saved if re.match(r"fig(0[1-9]|1[0-4])_", s) and s not in listed)
    assert not unlisted, f"notebooks save paper figures the README table does not list: {unlisted}"


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
