"""Public names of lutnb 0.1 keep working: the lazy top-level API and the deprecated module paths."""
import importlib
import warnings

import pytest

import lutnb
from lutnb import compat

# every top-level name lutnb 0.1 exported
API_0_1 = ("l2", "l1", "chebyshev", "pairwise_distance", "encode", "METRICS", "LUTLinear", "LUTConv2d", "LUTLayer",
           "set_mode", "lut_layers", "reconstruction_loss", "equivalent_bits", "convert", "ConversionSummary",
           "calibrate", "kmeans", "export_tables", "ExportedLayer", "ExportedModel", "save_tables", "load_tables",
           "write_hex", "IntegerEngine", "run_layer", "lutboost", "single_stage", "LUTBoostConfig", "TrainStage",
           "CalibrateStage", "block_refit", "fidelity")


@pytest.mark.parametrize("name", API_0_1)
def test_top_level_names_resolve(name):
    assert getattr(lutnb, name) is not None and name in dir(lutnb)


def test_lutboost_is_the_function_not_a_package():
    assert callable(lutnb.lutboost) and lutnb.lutboost.__module__ == "lutnb.boosting.runner"
    assert callable(lutnb.calibrate) and callable(lutnb.convert)


@pytest.mark.parametrize("old", sorted(compat.ALIASES))
def test_old_module_paths_import_with_a_deprecation_warning(old):
    for target in compat.ALIASES[old]:
        importlib.import_module(target)  # every target exists
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import sys

        sys.modules.pop(old, None)
        mod = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and old in str(w.message) for w in caught)
    names = dir(mod)
    assert names, f"{old} exposes nothing"
    first = names[0]
    assert getattr(mod, first) is not None


def test_old_names_are_the_new_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from lutnb.engine import IntegerEngine
        from lutnb.native import native_encode
        from lutnb.transformers import block_refit, load_minilm
    from lutnb.boosting.refit import block_refit as br
    from lutnb.deploy.engine import IntegerEngine as IE
    from lutnb.kernels.dispatch import encode
    from lutnb.zoo.minilm import load_minilm as lm

    assert IntegerEngine is IE and native_encode is encode and block_refit is br and load_minilm is lm


def test_unknown_old_name_says_where_the_module_went():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module("lutnb.quant")
    with pytest.raises(AttributeError, match="lutnb.vq.quant"):
        mod.no_such_name  # noqa: B018


def test_deprecation_warning_points_at_the_users_import(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "old_user_code.py"
    script.write_text("from lutnb.engine import IntegerEngine  # noqa: F401\n")
    err = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stderr
    assert f"{script}:1: DeprecationWarning: lutnb.engine is deprecated" in err


def test_moved_experiment_names_say_where_they_went():
    with pytest.raises(ImportError, match="lutnb.experiments.compare"):
        from lutnb.boosting import compare  # noqa: F401


def test_no_old_module_paths_or_outside_files_are_named_in_the_repo():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    old = sorted([*compat.ALIASES, "lutnb.boosting.compare", "lutnb.boosting.summarize"], key=len, reverse=True)
    old += [k.replace(".", "/") + ".py" for k in compat.ALIASES] + ["lutnb/csrc"]
    pattern = re.compile(r"(?<![\w./])(" + "|".join(re.escape(k) for k in old) + r")\b|PAPER\.md|LAB-NOTES|shared/")
    files = [p for d in ("lutnb", "tests", "tools", "benchmarks", "notebooks", "docs") for p in (root / d).rglob("*")
             if p.suffix in (".py", ".ipynb", ".md", ".c")]
    files += [root / "pyproject.toml", root / "Makefile"]
    skip = {root / "lutnb" / "compat.py", Path(__file__).resolve()}
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in files if p not in skip
             for m in pattern.finditer(p.read_text())]
    # the README names the old paths on purpose (its design notes say where they went); no outside files
    found += [f"README.md: {m}" for m in re.findall(r"PAPER\.md|LAB-NOTES|shared/", (root / "README.md").read_text())]
    assert found == []
