"""Notebook hygiene: `python tools/nbtool.py strip notebooks/*.ipynb` (or `check`).

strip: removes outputs, execution counts, widget state and jupytext metadata, and sets the python3
kernelspec, so notebooks are committed clean. check: exits 1 if any notebook is not stripped.
"""
from __future__ import annotations

import sys

import nbformat

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(nb) -> bool:
    before = nbformat.writes(nb)
    for key in ("widgets", "jupytext", "papermill", "execution"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb) != before


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("strip", "check"):
        print(__doc__)
        return 2
    dirty = []
    for path in argv[1:]:
        nb = nbformat.read(path, as_version=4)
        if clean(nb):
            dirty.append(path)
            if argv[0] == "strip":
                nbformat.write(nb, path)
    if argv[0] == "check" and dirty:
        print("not stripped (run `make strip`): " + ", ".join(dirty))
        return 1
    if argv[0] == "strip":
        print(f"stripped {len(dirty)} of {len(argv) - 1} notebooks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
