"""Run every numbered notebook headlessly with papermill: `python -m lutnb.nb.reproduce [--full]`.

Executed copies go to results/executed/ (git-ignored); each notebook writes its own figures/ and
results/ files. One progress line per notebook.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..files import repo_root, results_dir


def notebook_paths(pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    return sorted((repo_root() / "notebooks").glob(pattern))


def run_notebook(path: Path, parameters: dict, out_dir: Path, quiet: bool = True) -> Path:
    """Execute one notebook with papermill; return the executed copy's path."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    pm.execute_notebook(
        str(path), str(out), parameters=parameters, kernel_name="python3", language="python",
        cwd=str(path.parent), progress_bar=not quiet, log_output=False,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="FULL sizes (hours on a CPU; meant for a GPU)")
    ap.add_argument("--only", default=None, help="glob of notebooks to run, e.g. '01_*'")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    nbs = notebook_paths(args.only + ".ipynb" if args.only and not args.only.endswith(".ipynb") else
                         args.only or "[0-9][0-9]_*.ipynb")
    if not nbs:
        print(f"no notebooks match {args.only!r} under {repo_root() / 'notebooks'}", file=sys.stderr)
        return 2
    params = {"SMOKE": not args.full, "SEED": args.seed}
    out_dir = results_dir() / "executed"
    os.environ.setdefault("TQDM_DISABLE", "1")
    t_all = time.perf_counter()
    failed = []
    for i, nb in enumerate(nbs, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(nbs)}] {nb.name} ...", end="", flush=True)
        try:
            run_notebook(nb, params, out_dir)
            print(f" ok ({time.perf_counter() - t0:.1f} s)", flush=True)
        except Exception as exc:  # keep going, report at the end
            what = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', str(exc))}"
            print(f" FAILED ({time.perf_counter() - t0:.1f} s): {what[:500]} (see {out_dir / nb.name})",
                  flush=True)
            failed.append(nb.name)
    mode = "FULL" if args.full else "SMOKE"
    print(f"done: {len(nbs) - len(failed)}/{len(nbs)} notebooks ({mode}) in "
          f"{time.perf_counter() - t_all:.1f} s; executed copies in {out_dir}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
