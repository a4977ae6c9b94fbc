"""LUTBoost against the single-stage baseline over metrics and seeds, on the project's trained models."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..boosting.config import LUTBoostConfig
from ..boosting.runner import lutboost, single_stage
from ..files import RunCache
from ..vq.layers import equivalent_bits
from ..zoo.data import get_dataset
from ..zoo.train import RECIPES, pretrained


def compare(model_name: str, metrics=("l2", "l1", "chebyshev"), seeds=(0, 1, 2), v: int = 4, c: int = 16,
            stages: LUTBoostConfig | None = None, methods=("lutboost", "single_stage"), skip="auto",
            progress: bool = False, track_test: bool = False, on_record: Callable | None = None,
            cache: str | Path | None = None) -> list[dict]:
    """Run LUTBoost and/or the single-stage baseline (same total epochs) for every (metric, seed) on a
    cached pretrained model (``lutnb.zoo.train.pretrained``); return one record per run:
    {model, dataset, method, metric, v, c, bits, seed, n_test, fp32_acc, lut_acc (INT8 tables, test), seconds,
    epochs, selected_stage, float_layers and float_mac_share (layers kept float, ``skip``), epoch_curve}.
    ``on_record(record)`` is called as each finishes (e.g. to save partial results). The single-stage baseline
    is the fair one of `lutnb.boosting.runner.single_stage` (the same calibration, total epochs and schedule).

    ``cache``: a JSON-lines file (`lutnb.files.RunCache`) that makes long sweeps resumable. Every finished
    record is stored under a key of everything that determines it (model, method, metric, v, c, seed, skip,
    track_test, the stage configuration); a later call with the same arguments returns the stored record
    instead of training again (its ``seconds`` are those of the run that made it, ``cached`` is True).
    """

    cfg = stages if stages is not None else LUTBoostConfig()
    dataset = RECIPES[model_name].dataset
    store = RunCache(cache) if cache is not None else None
    out = []
    for seed in seeds:
        data = model = None
        for metric in metrics:
            for method in methods:
                if method not in ("lutboost", "single_stage"):
                    raise ValueError(f"method={method!r} must be 'lutboost' or 'single_stage'")
                desc = run_description(model_name, method, metric, v, c, seed, skip, track_test, cfg)
                rec = store.get(desc) if store is not None else None
                if rec is not None:
                    out.append(rec)
                    if on_record is not None:
                        on_record(rec)
                    continue
                if model is None:
                    data = get_dataset(dataset, seed=seed)
                    model = pretrained(model_name, seed, progress=progress)
                tic = time.perf_counter()
                if method == "lutboost":
                    _, rep = lutboost(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                      stages=cfg, seed=seed, test=data.test, progress=progress,
                                      track_test=track_test)
                elif method == "single_stage":
                    _, rep = single_stage(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                          reference=cfg, seed=seed, test=data.test, progress=progress,
                                          track_test=track_test)
                rec = {"model": model_name, "dataset": dataset, "method": method, "metric": metric, "v": v,
                       "c": c, "bits": equivalent_bits(v, c), "seed": seed, "n_test": len(data.test),
                       "fp32_acc": rep.fp32_test_acc,
                       "lut_acc": rep.final_acc, "drop": rep.fp32_test_acc - rep.final_acc,
                       "seconds": time.perf_counter() - tic, "epochs": rep.total_epochs,
                       "selected_stage": rep.selected_stage, "float_layers": rep.float_layers,
                       "float_mac_share": rep.float_mac_share,
                       "epoch_curve": rep.epoch_curve(), "stages": rep.to_frame().reset_index().to_dict("records")}
                if store is not None:
                    store.put(desc, rec)
                out.append(rec)
                if on_record is not None:
                    on_record(rec)
    return out


def run_description(model_name: str, method: str, metric: str, v: int, c: int, seed: int, skip,
                    track_test: bool, cfg: LUTBoostConfig) -> dict:
    """Everything that determines one `compare` record (the `RunCache` key)."""
    return {"model": model_name, "method": method, "metric": metric, "v": v, "c": c,
            "seed": seed, "skip": skip if isinstance(skip, (str, type(None))) else sorted(skip),
            "track_test": bool(track_test), "config": cfg.to_dict()}


def summarize(records: list[dict]):
    """Mean and std over seeds of fp32 and LUT accuracy per (model, method, metric, v, c): a DataFrame."""
    import pandas as pd

    df = pd.DataFrame([{k: r[k] for k in ("model", "method", "metric", "v", "c", "bits", "seed", "fp32_acc",
                                          "lut_acc", "drop", "seconds")} for r in records])
    g = df.groupby(["model", "method", "metric", "v", "c", "bits"], sort=False)
    out = g.agg(fp32_mean=("fp32_acc", "mean"), fp32_std=("fp32_acc", "std"), lut_mean=("lut_acc", "mean"),
                lut_std=("lut_acc", "std"), drop_mean=("drop", "mean"), seeds=("seed", "nunique"),
                seconds=("seconds", "mean"))
    return out.reset_index()
