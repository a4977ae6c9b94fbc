"""What a LUTBoost run reports: one record per stage, a table and JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class StageResult:
    """Metrics after one stage."""

    stage: str
    epochs: int
    seconds: float
    test_acc_lut: float | None
    test_acc_int8: float | None
    val_acc: float | None
    layers: dict = field(default_factory=dict)  # name -> {recon_rel, entropy_bits, dead_centroids, ...}
    history: list = field(default_factory=list)  # per epoch: loss parts, val/test acc, lr, seconds
    skipped: bool = False
    rolled_back: bool = False  # ended below the best val score so far: the model went back to that state

    @property
    def mean_recon(self) -> float:
        vals = [d["recon_rel"] for d in self.layers.values()]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def mean_entropy(self) -> float:
        vals = [d["entropy_bits"] for d in self.layers.values()]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def dead_centroids(self) -> int:
        return int(sum(d["dead_centroids"] for d in self.layers.values()))


@dataclass
class LUTBoostReport:
    """Per-stage metrics of one run; ``to_frame()`` / ``str()`` give the table, ``to_dict()`` the JSON."""

    method: str
    v: int
    c: int
    metric: str
    seed: int
    fp32_test_acc: float
    stages: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    resumed_from: str | None = None
    selected_stage: str | None = None  # the stage whose state the run returned (best val score, INT-b tables)
    float_layers: dict = field(default_factory=dict)  # layers kept float -> their share of the model's MACs
    refit: dict = field(default_factory=dict)  # CalibrateStage(refit=True): layer -> output error before/after

    @property
    def final(self) -> StageResult:
        """The result of the state the run returned: the selected stage, else the last stage that ran."""
        done = [s for s in self.stages if not s.skipped and not s.rolled_back]
        if self.selected_stage is not None:
            chosen = [s for s in done if s.stage == self.selected_stage]
            if chosen:
                return chosen[-1]
        return done[-1] if done else self.stages[-1]

    @property
    def final_acc(self) -> float:
        """Test accuracy (%) of the returned model with INT-b tables."""
        return self.final.test_acc_int8

    @property
    def kmeans_acc(self) -> float | None:
        """Test accuracy (%) after the calibration alone (k-means init), INT-b tables."""
        cal = [s for s in self.stages if s.stage == "calibrate" and not s.skipped]
        return cal[0].test_acc_int8 if cal else None

    @property
    def float_mac_share(self) -> float:
        """Share of the model's weight-layer MACs that stay float (``float_layers``)."""
        return float(sum(self.float_layers.values()))

    @property
    def seconds(self) -> float:
        return float(sum(s.seconds for s in self.stages))

    @property
    def total_epochs(self) -> int:
        return int(sum(s.epochs for s in self.stages))

    def epoch_curve(self) -> list[dict]:
        """Test accuracy after every epoch over all stages: [{"epoch": cumulative, "stage", "test_acc"}]."""
        out, e = [], 0
        for s in self.stages:
            if s.skipped:
                continue
            if s.epochs == 0:
                out.append({"epoch": e, "stage": s.stage, "test_acc": s.test_acc_lut})
            for h in s.history:
                e += 1
                out.append({"epoch": e, "stage": s.stage, "test_acc": h.get("test_acc")})
        return out

    def to_frame(self):
        import pandas as pd

        rows = []
        for s in self.stages:
            rows.append({"stage": s.stage, "skipped": s.skipped, "rolled_back": s.rolled_back,
                         "epochs": s.epochs, "seconds": s.seconds,
                         "test_acc_lut": s.test_acc_lut, "test_acc_int8": s.test_acc_int8,
                         "val_acc": s.val_acc, "recon_rel": s.mean_recon, "entropy_bits": s.mean_entropy,
                         "dead_centroids": s.dead_centroids})
        return pd.DataFrame(rows).set_index("stage")

    def layer_frame(self):
        """Per (stage, layer) metrics as a DataFrame."""
        import pandas as pd

        rows = [{"stage": s.stage, "layer": n, **d} for s in self.stages for n, d in s.layers.items()]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        has_test = self.final_acc is not None
        fp32 = f"fp32 {self.fp32_test_acc:.2f} %" if has_test else "no test split given (test=)"
        head = f"{self.method}: v={self.v} c={self.c} metric={self.metric} seed={self.seed} {fp32}"
        total = sum(d.get("S", 0) * d.get("c", 0) for d in (self.final.layers or {}).values())
        lines = [head, f"{'stage':<10} {'ep':>3} {'sec':>6} {'test lut':>8} {'test int8':>9} {'val':>6} "
                       f"{'recon':>7} {'H bits':>6} {'dead':>5}" + (f" (of {total} centroids)" if total else "")]
        for s in self.stages:
            if s.skipped:
                lines.append(f"{s.stage:<10} skipped")
                continue

            def f(x, w=8):
                return f"{x:>{w}.2f}" if x is not None else f"{'-':>{w}}"
            lines.append(f"{s.stage:<10} {s.epochs:>3} {s.seconds:>6.1f} {f(s.test_acc_lut)} "
                         f"{f(s.test_acc_int8, 9)} {f(s.val_acc, 6)} {s.mean_recon:>7.4f} "
                         f"{s.mean_entropy:>6.2f} {s.dead_centroids:>5}"
                         + ("  rolled back" if s.rolled_back else ""))
        sel = f" (state of stage {self.selected_stage}, best on val)" if self.selected_stage else ""
        if has_test:
            lines.append(f"final INT{self._bits()} test accuracy {self.final_acc:.2f} %{sel} "
                         f"(drop {self.fp32_test_acc - self.final_acc:+.2f} pt; negative: above fp32) "
                         f"in {self.seconds:.1f} s")
        else:
            val = self.final.val_acc
            lines.append(f"final INT{self._bits()} validation accuracy "
                         f"{'-' if val is None else f'{val:.2f} %'}{sel} in {self.seconds:.1f} s")
        if self.float_layers:
            lines.append("kept float: " + ", ".join(self.float_layers)
                         + f" ({100 * self.float_mac_share:.1f} % of the MACs)")
        return "\n".join(lines)

    def _bits(self) -> int:
        st = self.config.get("stages", [])
        return st[-1].get("table_bits", 8) if st else 8

    _repr_pretty_ = lambda self, p, cycle: p.text(str(self))  # noqa: E731

    def to_dict(self) -> dict:
        d = asdict(self)
        d["final_acc"] = self.final_acc
        d["kmeans_acc"] = self.kmeans_acc
        d["seconds"] = self.seconds
        d["total_epochs"] = self.total_epochs
        d["epoch_curve"] = self.epoch_curve()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LUTBoostReport":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["stages"] = [StageResult(**s) for s in d.get("stages", [])]
        return cls(**d)
