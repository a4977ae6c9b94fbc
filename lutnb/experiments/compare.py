"""LUTBoost against the single-stage baseline over metrics and seeds, on the project's trained models."""
from __future__ import annotations

import time
from typing import Callable

from ..boosting.config import LUTBoostConfig
from ..boosting.runner import lutboost, single_stage
from ..vq.layers import equivalent_bits
from ..zoo.data import get_dataset
from ..zoo.train import RECIPES, pretrained


def compare(model_name: str, metrics=("l2", "l1", "chebyshev"), seeds=(0, 1, 2), v: int = 4, c: int = 16,
            stages: LUTBoostConfig | None = None, methods=("lutboost", "single_stage"), skip="auto",
            progress: bool = False, track_test: bool = False, on_record: Callable | None = None) -> list[dict]:
    """Run LUTBoost and/or the single-stage baseline (same total epochs) for every (metric, seed) on a
    cached pretrained model (``lutnb.zoo.train.pretrained``); return one record per run:
    {model, dataset, method, metric, v, c, bits, seed, n_test, fp32_acc, lut_acc (INT8 tables, test), seconds,
    epochs, selected_stage, float_layers and float_mac_share (layers kept float, ``skip``), epoch_curve}.
    ``on_record(record)`` is called as each finishes (e.g. to save partial results). The single-stage baseline
    is the fair one of `lutnb.boosting.runner.single_stage` (the same calibration, total epochs and schedule).
    """

    cfg = stages if stages is not None else LUTBoostConfig()
    dataset = RECIPES[model_name].dataset
    out = []
    for seed in seeds:
        data = get_dataset(dataset, seed=seed)
        model = pretrained(model_name, seed, progress=progress)
        for metric in metrics:
            for method in methods:
                tic = time.perf_counter()
                if method == "lutboost":
                    _, rep = lutboost(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                      stages=cfg, seed=seed, test=data.test, progress=progress,
                                      track_test=track_test)
                elif method == "single_stage":
                    _, rep = single_stage(model, data.train, data.val, v=v, c=c, metric=metric, skip=skip,
                                          reference=cfg, seed=seed, test=data.test, progress=progress,
                                          track_test=track_test)
                else:
                    raise ValueError(f"method={method!r} must be 'lutboost' or 'single_stage'")
                rec = {"model": model_name, "dataset": dataset, "method": method, "metric": metric, "v": v,
                       "c": c, "bits": equivalent_bits(v, c), "seed": seed, "n_test": len(data.test),
                       "fp32_acc": rep.fp32_test_acc,
                       "lut_acc": rep.final_acc, "drop": rep.fp32_test_acc - rep.final_acc,
                       "seconds": time.perf_counter() - tic, "epochs": rep.total_epochs,
                       "selected_stage": rep.selected_stage, "float_layers": rep.float_layers,
                       "float_mac_share": rep.float_mac_share,
                       "epoch_curve": rep.epoch_curve(), "stages": rep.to_frame().reset_index().to_dict("records")}
                out.append(rec)
                if on_record is not None:
                    on_record(rec)
    return out


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
