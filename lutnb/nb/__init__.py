"""lutnb.nb: what the notebooks share: results JSON, the papermill runner, figure saving and all plotting.

``results`` (results/NN_name.json), ``figures`` (one style, `savefig`), ``plots`` (every figure that is
more than a call), ``reproduce`` (``python -m lutnb.nb.reproduce``: run every notebook headlessly).
Paths (figures/, results/, data/) live in `lutnb.files`, below every package, and are re-exported here.
"""
from ..files import data_dir, figures_dir, repo_root, results_dir
from .results import read_results, write_results

__all__ = ["data_dir", "figures_dir", "read_results", "repo_root", "results_dir", "write_results"]
