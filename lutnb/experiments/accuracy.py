"""Accuracy records for co-design: what notebooks 01-03 measure, as `lutnb.codesign.accuracy.AccuracyRecord`s.

`write_accuracy_records(name, records)` is the one writer (results/accuracy_records/<name>.json, atomic);
`lutnb.codesign.accuracy.read_accuracy_records` reads them back. The helpers turn what the notebooks compute
into records: `records_from_compare` (notebooks 02 and 03, `lutnb.experiments.compare.compare`'s dicts),
`record_from_report` (notebook 02's detailed LUTBoost run) and `proxy_records_from_sweep` (notebook 01's VQ
sweep: the proxy, 1 - relative output error).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..codesign.accuracy import PROXY_SOURCE, SCHEMA, AccuracyRecord, records_dir
from ..files import atomic_write_bytes


def write_accuracy_records(name: str, records, directory=None) -> Path:
    """Write `records` (AccuracyRecords) to <directory or results/accuracy_records>/<name>.json, atomically,
    replacing that file; returns its path."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"name={name!r}: use a plain file stem such as '02_lutboost'")
    records = list(records)
    for i, r in enumerate(records):
        if not isinstance(r, AccuracyRecord):
            raise TypeError(f"records[{i}] is a {type(r).__name__}; build AccuracyRecords (see the helpers here)")
    doc = {"schema": SCHEMA, "name": name, "records": [r.to_dict() for r in records]}
    base = Path(directory) if directory is not None else records_dir()
    return atomic_write_bytes(base / f"{name}.json", (json.dumps(doc, indent=1) + "\n").encode())


def _percent_to_fraction(percent):
    return None if percent is None else float(percent) / 100.0


def records_from_compare(records: list[dict], table_bits: int = 8) -> list[AccuracyRecord]:
    """One record per `compare.compare` run: its INT-`table_bits` test accuracy (`lut_acc`, %, as a fraction).

    The source is the run's method ("lutboost" / "single_stage"), or "kmeans" for a run with no training
    epoch (calibration only). `table_bits`: the table bits of the runs' last stage (LUTBoostConfig's lut_qat).
    """
    return [AccuracyRecord(model=r["model"], metric=r["metric"], v=int(r["v"]), c=int(r["c"]),
                           accuracy=_percent_to_fraction(r["lut_acc"]),
                           source=r["method"] if r.get("epochs", 1) > 0 else "kmeans",
                           table_bits=table_bits, seed=r.get("seed"), n_test=r.get("n_test"),
                           fp32_accuracy=_percent_to_fraction(r.get("fp32_acc")))
            for r in records]


def record_from_report(report, model: str, table_bits: int = 8, n_test: int | None = None) -> AccuracyRecord:
    """The record of one `lutnb.boosting` run from its LUTBoostReport (final INT-`table_bits` accuracy)."""
    return AccuracyRecord(model=model, metric=report.metric, v=int(report.v), c=int(report.c),
                          accuracy=_percent_to_fraction(report.final_acc),
                          source=report.method if report.total_epochs > 0 else "kmeans", table_bits=table_bits,
                          seed=report.seed, n_test=n_test, fp32_accuracy=_percent_to_fraction(report.fp32_test_acc))


def unique_records(records) -> list[AccuracyRecord]:
    """`records` without repeats of one run (same model, metric, v, c, table bits, source and seed): the first
    is kept, e.g. notebook 02's detailed run when the comparison also ran that seed."""
    seen, out = set(), []
    for r in records:
        key = (r.model, r.metric, r.v, r.c, r.table_bits, r.source, r.seed)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def proxy_records_from_sweep(sweep, model: str = "digits_cnn", layer: str = "conv2",
                             seed: int | None = None) -> list[AccuracyRecord]:
    """Proxy records from a `lutnb.vq.error.quantization_sweep` DataFrame: 1 - rel_error of every VQ row.

    Labelled `PROXY_SOURCE` for the digits CNN's conv2 (the proxy co-design measures itself when no proxy
    records exist), else a proxy label naming the model and layer. Not an accuracy: co-design uses it only
    where no stored accuracy covers a (metric, v, c). Clipped at 0 (an output error above 100 %).
    """
    source = (PROXY_SOURCE if (model, layer) == ("digits_cnn", "conv2")
              else f"proxy: 1 - rel. output error of VQ, {model} {layer}, not accuracy")
    vq = sweep[sweep["method"] == "VQ"]
    return [AccuracyRecord(model=model, metric=r.metric, v=int(r.v), c=int(r.c),
                           accuracy=max(0.0, 1.0 - float(r.rel_error)), source=source, table_bits=None, seed=seed)
            for r in vq.itertuples()]
