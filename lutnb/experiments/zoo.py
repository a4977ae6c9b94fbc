"""LUTBoost on the held-out architecture zoo (issue 14): the default recipe, tuned on nothing here.

For every (data set, architecture, metric, seed): an fp32 model trained with one fixed recipe (the same for
every architecture), then LUTBoost with the default schedule and the fair single-stage baseline
(`lutnb.boosting.runner.single_stage`: the same calibration, total epochs, optimizer and schedule). One record
per run: fp32, k-means-only (the calibration stage), single-stage and LUTBoost test accuracy with INT8 tables,
validation scores, the stage LUTBoost returned, the share of MACs kept float, and wall times.
`benchmarks/bench_lutboost_zoo.py` runs it resumably and prints the table.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import torch

from ..boosting.runner import lutboost, single_stage
from ..files import load_checkpoint, save_checkpoint
from ..runtime import progress_disabled, seed_everything
from ..vq.layers import equivalent_bits
from ..zoo.archs import ARCHS, build_arch
from ..zoo.data import get_dataset
from ..zoo.train import evaluate, fit

ZOO_DATASETS = ("digits", "mnist1d_large")


TOKEN_ARCHS = ("mixer", "vit")  # LayerNorm token models; the others are CNNs and an MLP


# fp32 recipe, the same for every architecture (not tuned per model): AdamW, cosine, batch 64
ZOO_FP32 = {"digits": {"epochs": 60}, "mnist1d_large": {"epochs": 30}}


ZOO_FP32_COMMON = {"lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4, "optimizer": "adamw"}


ZOO_VERSION = 1  # bump when an architecture or the fp32 recipe changes: invalidates cached checkpoints


def zoo_checkpoint(dataset: str, arch: str, seed: int, cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is None:
        from ..files import data_dir

        cache_dir = data_dir() / "checkpoints"
    return Path(cache_dir) / f"zoo-{dataset}-{arch}-seed{seed}-r{ZOO_VERSION}.pt"


def zoo_pretrained(dataset: str, arch: str, seed: int = 0, data=None, cache_dir=None,
                   progress: bool = False) -> torch.nn.Module:
    """The fp32 zoo model (eval mode), trained once on the ``seed`` split and cached (atomic checkpoint)."""
    if dataset not in ZOO_FP32:
        raise ValueError(f"dataset={dataset!r}: the zoo runs on {sorted(ZOO_FP32)}")
    data = data or get_dataset(dataset, seed=seed)
    seed_everything(seed)
    model = build_arch(arch, data.input_shape, data.num_classes)
    path = zoo_checkpoint(dataset, arch, seed, cache_dir)
    if path.exists():
        model.load_state_dict(load_checkpoint(path))
        return model.eval()
    fit(model, data.train, data.val, seed=seed, progress=progress, **ZOO_FP32[dataset], **ZOO_FP32_COMMON)
    save_checkpoint(model.state_dict(), path)
    return model.eval()


def zoo_run(dataset: str, arch: str, metric: str, seed: int, v: int = 4, c: int = 16, cache_dir=None,
            progress: bool = False, methods=("lutboost", "single_stage"), skip="auto") -> dict:
    """One zoo record (see the module docstring); accuracies in % on the test split, INT8 tables. ``skip``:
    the layers kept float (default "auto": the first and the last layer called, and layers with fewer than 4
    sub-spaces)."""
    data = get_dataset(dataset, seed=seed)
    model = zoo_pretrained(dataset, arch, seed, data, cache_dir, progress)
    rec = {"dataset": dataset, "arch": arch, "metric": metric, "seed": seed, "v": v, "c": c,
           "bits": equivalent_bits(v, c), "n_test": len(data.test), "fp32_acc": evaluate(model, data.test)}
    for method in methods:
        run = lutboost if method == "lutboost" else single_stage
        tic = time.perf_counter()
        _, rep = run(model, data.train, data.val, v=v, c=c, metric=metric, seed=seed, test=data.test,
                     progress=progress, skip=skip)
        seconds = time.perf_counter() - tic
        cal = rep.stages[0]
        rec.update({"kmeans_acc": rep.kmeans_acc, "kmeans_val": cal.val_acc,
                    "float_layers": rep.float_layers, "float_mac_share": rep.float_mac_share})
        rec[f"{method}_acc"] = rep.final_acc
        rec[f"{method}_val"] = rep.final.val_acc
        rec[f"{method}_selected"] = rep.selected_stage
        rec[f"{method}_seconds"] = seconds
        rec[f"{method}_epochs"] = rep.total_epochs
        if method == "lutboost":
            rec["stages"] = [{"stage": s.stage, "test_int8": s.test_acc_int8, "val": s.val_acc,
                              "rolled_back": s.rolled_back} for s in rep.stages if not s.skipped]
    for method in methods:
        rec[f"{method}_drop"] = rec["fp32_acc"] - rec[f"{method}_acc"]
    return rec


def zoo_grid(datasets=ZOO_DATASETS, archs=tuple(ARCHS), metrics=("l2", "l1", "chebyshev"), seeds=(0, 1, 2)):
    """Every (dataset, arch, metric, seed) of the zoo, data set by data set, seed-major (a partial run has
    every architecture at seed 0 first)."""
    return [(d, a, m, s) for d in datasets for s in seeds for a in archs for m in metrics]


def zoo_summary(records: list[dict]):
    """Per (dataset, arch, metric): means over seeds of fp32, k-means-only, single-stage and LUTBoost accuracy,
    LUTBoost's drop, the seeds counted and the mean LUTBoost wall time; a DataFrame."""
    import pandas as pd

    df = pd.DataFrame(records)
    g = df.groupby(["dataset", "arch", "metric"], sort=False)
    cols = {"fp32": ("fp32_acc", "mean"), "kmeans": ("kmeans_acc", "mean"),
            "single_stage": ("single_stage_acc", "mean"), "lutboost": ("lutboost_acc", "mean"),
            "drop": ("lutboost_drop", "mean"), "drop_std": ("lutboost_drop", "std"),
            "seeds": ("seed", "nunique"), "lutboost_s": ("lutboost_seconds", "mean"),
            "single_s": ("single_stage_seconds", "mean")}
    cols = {k: v for k, v in cols.items() if v[0] in df}
    return g.agg(**cols).reset_index()


def zoo_verdict(records: list[dict]) -> dict:
    """The acceptance checks of issue 14 on ``records``: mean drop over the zoo, the worst (model, metric) mean
    drop, (model, metric, seed) runs that end below their k-means-only validation score, and per data set the
    models where LUTBoost's mean accuracy beats single-stage's."""
    s = zoo_summary(records)
    out = {"mean_drop": float(s["drop"].mean()), "worst": None, "below_kmeans_val": [], "beats_single": {}}
    w = s.loc[s["drop"].idxmax()]
    out["worst"] = {"dataset": w["dataset"], "arch": w["arch"], "metric": w["metric"], "drop": float(w["drop"])}
    out["below_kmeans_val"] = [f"{r['dataset']}/{r['arch']}/{r['metric']}/seed{r['seed']}" for r in records
                               if r.get("lutboost_val") is not None and r.get("kmeans_val") is not None
                               and r["lutboost_val"] < r["kmeans_val"]]
    if "single_stage" in s:
        per_model = s.groupby(["dataset", "arch"])[["lutboost", "single_stage"]].mean().reset_index()
        for ds, part in per_model.groupby("dataset"):
            out["beats_single"][ds] = {"wins": int((part["lutboost"] > part["single_stage"]).sum()),
                                       "models": int(len(part))}
    return out


def stage_effects(records: list[dict]):
    """What each LUTBoost stage did across ``records``, per data set and family ("cnn": the convolutional and MLP
    models, "token": mixer and ViT): the mean change of INT8 test accuracy the stage made (pt, from the state it
    started from), how often it lowered the validation score (and so was rolled back), and how often its state
    was the one returned. A DataFrame."""
    import pandas as pd

    rows = []
    for r in records:
        prev = None
        for st in r.get("stages", []):
            if prev is not None:
                rows.append({"dataset": r["dataset"], "family": "token" if r["arch"] in TOKEN_ARCHS else "cnn",
                             "stage": st["stage"], "delta_test": st["test_int8"] - prev["test_int8"],
                             "lowered_val": bool(st["rolled_back"]),
                             "returned": st["stage"] == r.get("lutboost_selected")})
            if not st["rolled_back"]:
                prev = st
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return (df.groupby(["dataset", "family", "stage"], sort=False)
            .agg(runs=("delta_test", "size"), mean_delta_test=("delta_test", "mean"),
                 lowered_val=("lowered_val", "mean"), returned=("returned", "mean")).reset_index())


def run_zoo(grid, done: set, on_record: Callable[[dict], None], progress: bool = False, **kw) -> None:
    """Run every grid point whose (dataset, arch, metric, seed) is not in ``done``; ``on_record`` after each."""
    from tqdm.auto import tqdm

    todo = [g for g in grid if g not in done]
    for d, a, m, s in tqdm(todo, desc="zoo", disable=progress_disabled(progress)):
        on_record(zoo_run(d, a, m, s, **kw))
