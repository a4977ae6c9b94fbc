"""Accuracy per (metric, v, c) for co-design: declared accuracy records, and a labelled proxy where none exist.

Experiments write `AccuracyRecord`s (the schema below) with `lutnb.experiments.accuracy.write_accuracy_records`
to ``results/accuracy_records/<name>.json``; `read_accuracy_records` is the one reader. Notebooks 02 and 03
write LUTBoost, single-stage and k-means records; notebook 01 writes proxy records from its VQ sweep.

`accuracy_table` gives one row per (metric, v, c): stored records where they exist (the preferred source, see
`SOURCE_PREFERENCE`, averaged over seeds), otherwise the proxy, 1 - relative output error of VQ on the digits
CNN's conv2 inputs. The proxy comes from proxy records (notebook 01, trained model) when any exist, else it
is measured here on an untrained seed-0 CNN and cached under results/dse_cache/. Every row says which
(`accuracy_source`). Table bits are recorded but the table is keyed by (metric, v, c) only.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from ..files import atomic_write_bytes, results_dir
from ..kernels.common import METRICS
from ..vq.error import collect_rows, quantization_sweep
from ..zoo.data import load_digits
from ..zoo.models import digits_cnn

SCHEMA = "lutnb.accuracy-records/1"
RECORDS_SUBDIR = "accuracy_records"
PROXY_PREFIX = "proxy:"
PROXY_SOURCE = "proxy: 1 - rel. output error of VQ, digits CNN conv2, not accuracy"
# stored sources, most trusted first: where several cover one (metric, v, c), only the first present is used
SOURCE_PREFERENCE = ("lutboost", "single_stage", "kmeans")
KEY = ["metric", "v", "c"]
COLUMNS = [*KEY, "accuracy", "accuracy_source"]


class AccuracyRecordError(ValueError):
    """A record or a record file that does not follow the schema; the message names the field or file."""


def _integer(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _fraction(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and 0.0 <= x <= 1.0


@dataclass(frozen=True)
class AccuracyRecord:
    """One measured accuracy of a LUT model (or one proxy value), as experiments write and co-design reads.

    model: the fp32 model converted (e.g. "digits_cnn"); metric: "l2" | "l1" | "chebyshev"; v, c: sub-vector
    length and centroids per codebook; accuracy: test accuracy as a fraction in [0, 1]; source: how it was
    obtained, "lutboost", "single_stage", "kmeans" (calibration only, no training) or "proxy: ..." (not an
    accuracy); table_bits: bits of the look-up table entries (None: float tables or not applicable);
    seed: the run's seed; n_test: test-set size; fp32_accuracy: the fp32 model's test accuracy (fraction).
    """

    model: str
    metric: str
    v: int
    c: int
    accuracy: float
    source: str
    table_bits: int | None = 8
    seed: int | None = None
    n_test: int | None = None
    fp32_accuracy: float | None = None

    def __post_init__(self):
        def bad(name, rule, fix):
            raise AccuracyRecordError(f"AccuracyRecord.{name}={getattr(self, name)!r}: {rule}; {fix}")

        for name in ("model", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                bad(name, "must be a non-empty string", "e.g. model='digits_cnn', source='lutboost'")
        if self.metric not in METRICS:
            bad("metric", f"must be one of {METRICS}", "use the lower-case name (check_metric normalises)")
        for name, lo in (("v", 1), ("c", 2)):
            if not _integer(getattr(self, name)) or getattr(self, name) < lo:
                bad(name, f"must be an integer >= {lo}", f"pass int({name})")
        for name, hi in (("table_bits", 32), ("seed", None), ("n_test", None)):
            val = getattr(self, name)
            if val is not None and (not _integer(val) or val < (1 if hi else 0) or (hi and val > hi)):
                bad(name, "must be None or an integer" + (f" in [1, {hi}]" if hi else " >= 0"), f"pass int({name})")
        for name in ("accuracy", "fp32_accuracy"):
            val = getattr(self, name)
            if (val is not None or name == "accuracy") and not _fraction(val):
                fix = ("it looks like a percentage: divide by 100" if isinstance(val, numbers.Real)
                       and not isinstance(val, bool) and 1.0 < val <= 100.0 else "give a fraction, e.g. 0.985")
                bad(name, "must be a finite fraction in [0, 1]", fix)
        for f in fields(self):  # plain int / float, so records are JSON-able whatever numpy type came in
            val = getattr(self, f.name)
            if _integer(val):
                object.__setattr__(self, f.name, int(val))
            elif isinstance(val, numbers.Real) and not isinstance(val, bool):
                object.__setattr__(self, f.name, float(val))

    @property
    def is_proxy(self) -> bool:
        return self.source.startswith(PROXY_PREFIX)

    def to_dict(self) -> dict:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(AccuracyRecord))
REQUIRED = tuple(f.name for f in fields(AccuracyRecord) if f.default is MISSING)


def records_dir() -> Path:
    """The default records folder, results/accuracy_records (not created here)."""
    return results_dir() / RECORDS_SUBDIR


def _file_error(path: Path, what: str) -> AccuracyRecordError:
    return AccuracyRecordError(
        f"accuracy records file {path}: {what}. Expected {{'schema': {SCHEMA!r}, 'records': [...]}} with "
        f"records of fields {FIELDS}, as lutnb.experiments.accuracy.write_accuracy_records writes; "
        "rewrite it with that function (rerun the notebook that wrote it) or delete it")


def read_accuracy_records(directory=None) -> list[AccuracyRecord]:
    """Every record of every `*.json` file in `directory` (default results/accuracy_records), files in name
    order; [] when the folder does not exist. A file that does not follow the schema raises an
    AccuracyRecordError naming the file. One run written by two notebooks (the same model, metric, v, c, source,
    table bits and seed: notebooks 02 and 03 both record LUTBoost at v=4, c=16) counts once, as the first file
    has it, so that averages and seed counts are over distinct runs."""
    base = Path(directory) if directory is not None else records_dir()
    out: list[AccuracyRecord] = []
    for path in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise _file_error(path, f"not readable JSON ({err})") from err
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise _file_error(path, f"schema is {found!r}, not {SCHEMA!r}")
        if not isinstance(doc.get("records"), list):
            raise _file_error(path, "'records' is missing or not a list")
        for i, rec in enumerate(doc["records"]):
            if not isinstance(rec, dict):
                raise _file_error(path, f"record {i} is a {type(rec).__name__}, not an object")
            unknown, missing = set(rec) - set(FIELDS), set(REQUIRED) - set(rec)
            if unknown or missing:
                raise _file_error(path, f"record {i} has unknown fields {sorted(unknown)} / lacks {sorted(missing)}")
            try:
                out.append(AccuracyRecord(**rec))
            except AccuracyRecordError as err:
                raise _file_error(path, f"record {i}: {err}") from err
    seen: set = set()
    unique = []
    for rec in out:
        key = (rec.model, rec.metric, rec.v, rec.c, rec.source, rec.table_bits, rec.seed)
        if rec.seed is not None and key in seen:
            continue
        seen.add(key)
        unique.append(rec)
    return unique


def _table(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame(rows)[COLUMNS]


def stored_accuracy_table(model: str | None = None, directory=None, records=None) -> pd.DataFrame:
    """(metric, v, c, accuracy, accuracy_source) from the stored (non-proxy) records.

    Records of `model` are used when any match, else all. Per (metric, v, c) only the most preferred source
    present is used (`SOURCE_PREFERENCE`, then any other in name order), averaged over its records (seeds).
    """
    recs = [r for r in (read_accuracy_records(directory) if records is None else records) if not r.is_proxy]
    if model is not None and any(r.model == model for r in recs):
        recs = [r for r in recs if r.model == model]
    if not recs:
        return _table([])
    df = pd.DataFrame([r.to_dict() for r in recs])
    rank = {s: i for i, s in enumerate(SOURCE_PREFERENCE)}
    df["rank"] = [rank.get(s, len(rank)) for s in df["source"]]
    best = df.sort_values(["rank", "source"]).groupby(KEY, as_index=False).first()[[*KEY, "source"]]
    out = (df.merge(best, on=[*KEY, "source"])
             .groupby(KEY, as_index=False).agg(accuracy=("accuracy", "mean"), source=("source", "first")))
    out["accuracy_source"] = "stored: " + out["source"]
    return out[COLUMNS]


def _measure_proxy(vs, cs, metrics, max_rows: int) -> dict:
    import torch

    torch.manual_seed(0)
    data = collect_rows(digits_cnn(), "conv2", load_digits(0).train.tensors[0], max_rows=max_rows, seed=0)
    df = quantization_sweep(data, vs=vs, cs=cs, metrics=metrics, scalar_bits=(), seed=0)
    return {(r.metric, int(r.v), int(r.c)): float(r.rel_error) for r in df.itertuples()}


def _measured_proxy(vs, cs, metrics, max_rows: int, recompute: bool) -> dict:
    """{(metric, v, c): accuracy} of the measured proxy, through its cache in results/dse_cache."""
    cache = results_dir() / "dse_cache" / f"proxy_{'-'.join(map(str, vs))}_{'-'.join(map(str, cs))}_" \
                                          f"{'-'.join(metrics)}_{max_rows}.json"
    if cache.exists() and not recompute:
        rel = {tuple(k.split("|")[:1]) + tuple(int(x) for x in k.split("|")[1:]): e
               for k, e in json.loads(cache.read_text()).items()}
    else:
        rel = _measure_proxy(vs, cs, metrics, max_rows)
        atomic_write_bytes(cache, json.dumps({f"{m}|{v}|{c}": e for (m, v, c), e in rel.items()}).encode())
    return {key: 1.0 - e for key, e in rel.items()}


def proxy_accuracy_table(recompute: bool = False, vs=(2, 4, 8), cs=(8, 16, 32),
                         metrics=("l2", "l1", "chebyshev"), max_rows: int = 2000, directory=None,
                         records=None) -> pd.DataFrame:
    """The proxy table (metric, v, c, accuracy, accuracy_source): from proxy records (averaged over seeds)
    when any exist, else measured for (vs, cs, metrics) and cached; `recompute` always measures."""
    acc, src = {}, {}
    if not recompute:
        recs = read_accuracy_records(directory) if records is None else records
        groups: dict = {}
        for r in recs:
            if r.is_proxy:
                groups.setdefault((r.metric, r.v, r.c), []).append(r)
        for key, rs in groups.items():
            acc[key] = rs[0].accuracy if len(rs) == 1 else sum(r.accuracy for r in rs) / len(rs)
            src[key] = rs[0].source
    if not acc:
        acc = _measured_proxy(vs, cs, metrics, max_rows, recompute)
    return _table([{"metric": m, "v": v, "c": c, "accuracy": a, "accuracy_source": src.get((m, v, c), PROXY_SOURCE)}
                   for (m, v, c), a in sorted(acc.items())])


def accuracy_table(model: str | None = None, directory=None) -> pd.DataFrame:
    """Stored accuracies where present, the proxy for every (metric, v, c) they do not cover."""
    records = read_accuracy_records(directory)
    stored = stored_accuracy_table(model, records=records)
    proxy = proxy_accuracy_table(records=records)
    if stored.empty:
        return proxy
    merged = pd.concat([stored, proxy]).drop_duplicates(KEY, keep="first")
    return merged.sort_values(KEY).reset_index(drop=True)
