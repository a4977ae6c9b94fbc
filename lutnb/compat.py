"""Deprecated module paths of lutnb 0.1 (one flat package), kept importable for one release.

``import lutnb.engine`` or ``from lutnb.distances import encode`` still work and warn once with the new
path; the names resolve to the very objects of the new layout (see the README's design notes).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

# old module -> the new modules its names now live in (searched in order)
ALIASES: dict[str, tuple[str, ...]] = {
    "lutnb.distances": ("lutnb.vq.distances", "lutnb.kernels.common"),
    "lutnb.layers": ("lutnb.vq.layers", "lutnb.vq.functional"),
    "lutnb.conversion": ("lutnb.vq.conversion",),
    "lutnb.calibration": ("lutnb.vq.calibration",),
    "lutnb.quant": ("lutnb.vq.quant", "lutnb.kernels.common"),
    "lutnb.analysis": ("lutnb.vq.error", "lutnb.vq.lutgemm"),
    "lutnb.ckernel": ("lutnb.kernels.compiled",),
    "lutnb.native": ("lutnb.kernels.dispatch", "lutnb.kernels.numba_kernels", "lutnb.kernels.compiled",
                     "lutnb.deploy.engine"),
    "lutnb.engine": ("lutnb.deploy.engine",),
    "lutnb.export": ("lutnb.deploy.export",),
    "lutnb.cost": ("lutnb.codesign.cost",),
    "lutnb.dse": ("lutnb.codesign.dse", "lutnb.codesign.analytic", "lutnb.codesign.accuracy"),
    "lutnb.explorer": ("lutnb.codesign.explorer",),
    "lutnb.workloads_zoo": ("lutnb.codesign.workloads",),
    "lutnb.data": ("lutnb.zoo.data", "lutnb.runtime"),
    "lutnb.models": ("lutnb.zoo.models",),
    "lutnb.vit": ("lutnb.zoo.vit", "lutnb.zoo.train"),
    "lutnb.train": ("lutnb.zoo.train", "lutnb.runtime", "lutnb.files"),
    "lutnb.transformers": ("lutnb.zoo.minilm", "lutnb.boosting.embeddings", "lutnb.boosting.refit",
                           "lutnb.boosting.distill", "lutnb.experiments.transformers", "lutnb.codesign.workloads",
                           "lutnb.nb.plots"),
    "lutnb.cifar": ("lutnb.experiments.cifar",),
    "lutnb.paths": ("lutnb.files",),
    "lutnb.results": ("lutnb.nb.results", "lutnb.files"),
    "lutnb.figures": ("lutnb.nb.figures",),
    "lutnb.plots": ("lutnb.nb.plots",),
    "lutnb.overview": ("lutnb.nb.plots",),
    "lutnb.hw.analysis": ("lutnb.hw.dataflow",),
    "lutnb.hw.diagram": ("lutnb.nb.plots",),
}
# names that changed as well as moved: old module -> {old name: "new.module:new_name"}
RENAMED: dict[str, dict[str, str]] = {
    "lutnb.native": {"native_encode": "lutnb.kernels.dispatch:encode",
                     "can_encode": "lutnb.kernels.dispatch:native_applies"},
}


class AliasModule(types.ModuleType):
    """A stand-in for an old module path: attribute look-ups go to the new modules."""

    def __init__(self, name: str):
        super().__init__(name, f"deprecated: moved to {', '.join(ALIASES[name])}")
        self.__lutnb_targets__ = ALIASES[name]

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        new = RENAMED.get(self.__name__, {}).get(attr)
        if new is not None:
            mod, _, name = new.partition(":")
            return getattr(importlib.import_module(mod), name)
        for target in self.__lutnb_targets__:
            mod = importlib.import_module(target)
            if attr in vars(mod):
                return vars(mod)[attr]
        raise AttributeError(f"{self.__name__!r} (deprecated; now {', '.join(self.__lutnb_targets__)}) has no "
                             f"attribute {attr!r}")

    def __dir__(self):
        names = set()
        for target in self.__lutnb_targets__:
            names |= {n for n in vars(importlib.import_module(target)) if not n.startswith("_")}
        return sorted(names)


class AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module paths in ALIASES and loads an AliasModule for each, with a DeprecationWarning."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return AliasModule(spec.name)

    def exec_module(self, module):
        warnings.warn(f"{module.__name__} is deprecated: import from {' / '.join(ALIASES[module.__name__])}",
                      DeprecationWarning, stacklevel=2)  # warnings skips importlib's frames: the user's import

    def get_code(self, fullname):
        """``python -m <old path>``: there is no code to run here; say where the module went."""
        raise ImportError(f"{fullname} moved to {' / '.join(ALIASES[fullname])}: run `python -m "
                          f"{ALIASES[fullname][0]}` instead")


def install() -> None:
    """Put the finder on sys.meta_path (once)."""
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(AliasFinder())
