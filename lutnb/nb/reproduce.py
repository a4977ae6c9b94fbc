"""Run the numbered notebooks headlessly with papermill: `python -m lutnb.reproduce [options]`.

    python -m lutnb.reproduce                           # every notebook, SMOKE sizes
    python -m lutnb.reproduce --only 01 --only 05       # by number, or by name prefix (`--only 01_vector`)
    python -m lutnb.reproduce --only 01 -p SEED 1 --out results_seed1
    python -m lutnb.reproduce --full                    # FULL sizes: refused without a GPU unless --allow-cpu

`-p NAME VALUE` overrides a parameter of the notebooks' `parameters` cell; VALUE is read as a Python
literal (`-p V_LIST "[2, 4]"`, `-p METRIC l2`) and must have the type of the cell's default.
`--out DIR` sends the results JSON, the executed copies (DIR/executed) and the figures (DIR/figures) there.
SMOKE and FULL are kept apart (`lutnb.nb.run`): SMOKE figures go to figures/_smoke/ (git-ignored, stamped
"SMOKE"), results to results/ only; FULL figures go to figures/ and results also to
data/reference_results/NN_name.json with provenance (with --out: DIR/figures and DIR/reference_results).
Progress: one bar over the notebooks and one over the cells of the running notebook; in FULL the
notebooks' own progress bars are streamed too (as text, every TQDM_MININTERVAL seconds, default 10).
"""
from __future__ import annotations

import argparse
import ast
import fnmatch
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from ..files import repo_root, results_dir


def notebook_paths(pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    return sorted((repo_root() / "notebooks").glob(pattern))


# ---------------------------------------------------------------------------------------- selection
def _number(path: Path) -> int | None:
    head = path.name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def select_notebooks(only: list[str] | None, paths: list[Path] | None = None) -> list[Path]:
    """The notebooks named by `only`: a number (`1`, `01`), a name prefix (`01_vec`) or a glob (`0[1-3]_*`)."""
    paths = notebook_paths() if paths is None else paths
    if not only:
        return paths
    chosen: list[Path] = []
    for token in only:
        token = token.strip().removesuffix(".ipynb")
        if token.isdigit():
            hits = [p for p in paths if _number(p) == int(token)]
        elif any(ch in token for ch in "*?["):
            hits = [p for p in paths if fnmatch.fnmatch(p.stem, token)]
        else:
            hits = [p for p in paths if p.stem.startswith(token)]
        if not hits:
            names = ", ".join(p.stem for p in paths)
            raise ValueError(f"--only {token!r} matches no notebook; give a number (01), a name prefix or a glob "
                             f"of: {names}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


# ---------------------------------------------------------------------------------------- parameters
def declared_parameters(path: Path) -> dict:
    """{NAME: default} of the notebook's cell tagged `parameters` (literals only, as the house rules ask)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    out = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return default is None or isinstance(value, type(default))


def parse_value(name: str, text: str, default):
    """`text` read as a Python literal with the type of `default` (strings may be given bare: `-p METRIC l2`)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word: a string
    if isinstance(default, bool) and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if isinstance(default, str) and not isinstance(value, str):
        value = text
    if not _same_kind(value, default):
        raise ValueError(f"-p {name} {text!r}: the notebook declares {name} = {default!r} "
                         f"({type(default).__name__}); give a {type(default).__name__} literal, "
                         f"e.g. -p {name} {default!r}")
    return float(value) if isinstance(default, float) else value


def notebook_parameters(path: Path, overrides: list[tuple[str, str]], base: dict) -> dict:
    """`base` (SMOKE, SEED) plus the `-p` overrides this notebook declares, typed by its parameters cell."""
    declared = declared_parameters(path)
    params = {k: v for k, v in base.items() if k in declared or not declared}
    for name, text in overrides:
        if name in declared:
            params[name] = parse_value(name, text, declared[name])
    return params


def check_overrides(paths: list[Path], overrides: list[tuple[str, str]]) -> None:
    """Every `-p NAME` must be declared by at least one selected notebook, and typed right in each."""
    declared = {p: declared_parameters(p) for p in paths}
    for name, text in overrides:
        owners = [p for p, d in declared.items() if name in d]
        if not owners:
            raise ValueError(f"-p {name}: no selected notebook has a parameter {name}; their parameters cells "
                             f"declare: {sorted(set().union(*declared.values()))}")
        for p in owners:
            parse_value(name, text, declared[p][name])


# ---------------------------------------------------------------------------------------- execution
def kernel_manager_class():
    """A kernel manager that does not expose the kernel on TCP in plain text.

    ipykernel warns "Kernel is running over TCP without encryption" on every start when the kernel listens on
    TCP without CurveZMQ keys (ipykernel/kernelapp.py, `init_sockets`). A local run needs no TCP: on POSIX the
    kernel talks over IPC (unix sockets in Jupyter's runtime folder); elsewhere the manager provisions CurveZMQ
    keys (`transport_encryption="auto"`) when pyzmq has CURVE."""
    import zmq
    from jupyter_client import AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if os.name == "posix":
                kwargs.setdefault("transport", "ipc")
            elif zmq.has("curve"):
                kwargs.setdefault("transport_encryption", "auto")
            super().__init__(**kwargs)

    return LocalKernelManager


def run_notebook(path: Path, parameters: dict, out_dir: Path, quiet: bool = True, log_output: bool = False,
                 position: int = 0) -> Path:
    """Execute one notebook with papermill; return the executed copy's path."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    bar = False if quiet else {"desc": f"  {path.stem}", "position": position, "leave": False, "disable": False}
    pm.execute_notebook(
        str(path), str(out), parameters=parameters, kernel_name="python3", language="python",
        cwd=str(path.parent), progress_bar=bar, log_output=log_output,
        kernel_manager_class=kernel_manager_class(), start_timeout=300,  # a loaded machine starts kernels slowly
    )
    return out


def gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


_TEXT_TQDM = ("# written by lutnb.nb.reproduce (FULL): text progress bars, so papermill's log shows them\n"
              "import tqdm.auto, tqdm.autonotebook, tqdm.std\n"
              "tqdm.auto.tqdm = tqdm.autonotebook.tqdm = tqdm.std.tqdm\n"
              "tqdm.auto.trange = tqdm.autonotebook.trange = tqdm.std.trange\n")


class KernelEnvironment:
    """os.environ for the kernels of one run (they inherit it), restored on exit.

    SMOKE: the notebooks' own bars off (TQDM_DISABLE=1 unless set). FULL: on, as text (an IPython startup
    file swaps tqdm.auto's widget bar for the text one) every TQDM_MININTERVAL s; `out`: results and figures."""

    def __init__(self, full: bool, out: Path | None, command: str | None = None):
        self.full, self.out, self.saved, self.tmp = full, out, dict(os.environ), None
        self.command = command

    def __enter__(self):
        if self.out is not None:
            os.environ["LUTNB_RESULTS"] = str(self.out)
            os.environ["LUTNB_FIGURES"] = str(self.out / "figures")
            os.environ["LUTNB_REFERENCE"] = str(self.out / "reference_results")
        if self.command:
            os.environ["LUTNB_COMMAND"] = self.command  # recorded in FULL results' provenance
        if not self.full:
            os.environ.setdefault("TQDM_DISABLE", "1")
            return self
        os.environ.pop("TQDM_DISABLE", None)
        os.environ.setdefault("TQDM_MININTERVAL", "10")
        self.tmp = tempfile.TemporaryDirectory(prefix="lutnb-ipython-")
        startup = Path(self.tmp.name) / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-lutnb-text-progress.py").write_text(_TEXT_TQDM)
        os.environ["IPYTHONDIR"] = self.tmp.name
        return self

    def __exit__(self, *exc):
        os.environ.clear()
        os.environ.update(self.saved)
        if self.tmp is not None:
            self.tmp.cleanup()


def _stream_notebook_output() -> None:
    """FULL: papermill logs each cell's output (and the notebooks' text bars) on the `papermill` logger."""
    import logging

    log = logging.getLogger("papermill")
    if not any(getattr(h, "lutnb", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("    | %(message)s"))
        handler.lutnb = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def _failure(exc: BaseException) -> str:
    return f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', str(exc))}"[:500]


def run_all(nbs: list[Path], overrides, base: dict, out_dir: Path, quiet: bool, full: bool) -> list[str]:
    """Run the notebooks in order with a bar over them (and one over cells); return the names that failed."""
    from tqdm import tqdm

    failed = []
    bar = tqdm(total=len(nbs), unit="notebook", desc="notebooks", position=0, disable=quiet, file=sys.stderr)
    for nb in nbs:
        bar.set_postfix_str(nb.stem)
        t0 = time.perf_counter()
        try:
            run_notebook(nb, notebook_parameters(nb, overrides, base), out_dir, quiet=quiet, log_output=full,
                         position=1)
            line = f"{nb.name}: ok ({time.perf_counter() - t0:.1f} s)"
        except Exception as exc:  # keep going, report at the end
            line = f"{nb.name}: FAILED ({time.perf_counter() - t0:.1f} s): {_failure(exc)} (see {out_dir / nb.name})"
            failed.append(nb.name)
        bar.update(1)
        tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
    bar.close()
    return failed


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lutnb.reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="FULL sizes (hours; meant for a GPU machine)")
    ap.add_argument("--allow-cpu", action="store_true", help="run --full even where no GPU is visible")
    ap.add_argument("--only", action="append", metavar="NB",
                    help="notebook number (01), name prefix (01_vector) or glob; repeat for several")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override a parameters-cell value (a Python literal of the default's type)")
    ap.add_argument("--seed", type=int, default=None, help="shorthand for -p SEED N")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for results JSON, executed copies (OUT/executed) and figures (OUT/figures); "
                         "default: results/ (LUTNB_RESULTS) and figures/")
    ap.add_argument("--quiet", action="store_true", help="no progress bars (one line per notebook)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = [tuple(p) for p in args.parameter] + ([("SEED", str(args.seed))] if args.seed is not None else [])
    try:
        nbs = select_notebooks(args.only)
        check_overrides(nbs, overrides)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.full and not args.allow_cpu and not gpu_available():
        print("error: --full asks for FULL sizes, which train for hours and are meant for a GPU, but "
              "torch.cuda.is_available() is False here. Run SMOKE sizes (drop --full), or add --allow-cpu to "
              "run FULL on the CPU anyway.", file=sys.stderr)
        return 2
    out = args.out.resolve() if args.out is not None else None
    out_dir = (out if out is not None else results_dir()) / "executed"
    mode = "FULL" if args.full else "SMOKE"
    print(f"running {len(nbs)} notebook(s) ({mode}): {', '.join(p.stem for p in nbs)}; executed copies in {out_dir}",
          flush=True)
    t_all = time.perf_counter()
    if args.full:
        _stream_notebook_output()
    command = f"python -m lutnb.reproduce {shlex.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    with KernelEnvironment(args.full, out, command):
        failed = run_all(nbs, overrides, {"SMOKE": not args.full, "SEED": 0}, out_dir, args.quiet, args.full)
    print(f"done: {len(nbs) - len(failed)}/{len(nbs)} notebooks ({mode}) in {time.perf_counter() - t_all:.1f} s",
          flush=True)
    where = out if out is not None else None
    if args.full:
        print(f"FULL: figures in {where / 'figures' if where else 'figures/'}, results with provenance in "
              f"{where / 'reference_results' if where else 'data/reference_results/'}", flush=True)
    else:
        print(f"SMOKE: figures (stamped SMOKE) in {where / 'figures' / '_smoke' if where else 'figures/_smoke/'} "
              "(git-ignored); these are plumbing checks, not results", flush=True)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
