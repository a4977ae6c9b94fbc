"""lutnb.nb: what the notebooks share: results JSON, the papermill runner, figure saving and all plotting.

``run`` (SMOKE or FULL: `begin_run`, provenance), ``results`` (results/NN_name.json, comparing two runs),
``figures`` (one style, `savefig`), ``plots`` / ``plots_hw`` (every figure that is more than a call: accuracy side
/ hardware side), ``gallery`` (the README's FULL results), ``reproduce`` (``python -m lutnb.nb.reproduce``: run
every notebook headlessly).
Paths (figures/, results/, data/) live in `lutnb.files`, below every package, and are re-exported here.
"""
from ..files import data_dir, figures_dir, reference_dir, repo_root, results_dir, smoke_figures_dir
from .results import read_results, write_results
from .run import begin_run, provenance, run_mode

__all__ = ["begin_run", "data_dir", "figures_dir", "provenance", "read_results", "reference_dir", "repo_root",
           "results_dir", "run_mode", "smoke_figures_dir", "write_results"]
