"""LUTBoost's stage configs: frozen dataclasses that check themselves."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ..vq.layers import BACKWARDS
from ..vq.quant import check_table_bits

STAGE_NAMES = ("calibrate", "centroids", "joint", "lut_qat")


TRAIN_MODES = ("lut", "quant")


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number {'>= 0' if allow_zero else '> 0'}")


@dataclass(frozen=True)
class CalibrateStage:
    """Stage 0: k-means init from activations (``max_rows`` sampled rows per layer, ``batches`` batches)."""

    batches: int = 8
    batch_size: int = 256
    max_rows: int = 2048
    iters: int = 10
    sequential: bool = True  # layer by layer: each layer sees the outputs of the quantized layers before it
    bn_reestimate: bool = True  # re-estimate BatchNorm running statistics with the LUT layers active
    bn_per_layer: bool = True  # sequential + bn_reestimate: re-estimate BN after each layer's k-means
    refit: bool = True  # refit each layer's weights to the fp32 layer's output, in call order (after its k-means)
    skip: bool = False
    name: str = "calibrate"

    def __post_init__(self):
        for f in ("batches", "batch_size", "max_rows", "iters"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CalibrateStage.{f}={v!r} must be an integer >= 1")
        if self.name != "calibrate":
            raise ValueError(f"CalibrateStage.name={self.name!r} must be 'calibrate'")

    @property
    def epochs(self) -> int:
        return 0


@dataclass(frozen=True)
class TrainStage:
    """A training stage (centroids, joint or lut_qat): what learns, for how long, with which losses.

    ``train_weights``: False freezes every non-codebook parameter (stage 1). ``mode``: "lut" (float tables)
    or "quant" (INT-``table_bits`` tables, straight-through). ``backward``: the LUT layers' gradient,
    "exact" (straight-through) or "soft" (soft assignment with a temperature annealed from
    ``temperature[0]`` to ``temperature[1]``, in units of each layer's mean nearest-centroid distance).
    Loss = ``task_weight`` CE + ``recon_weight`` reconstruction + ``distill_weight`` KL(teacher || student)
    at ``distill_temperature``. ``dead_restart``: re-seed unused centroids after every epoch.
    ``select_best``: keep the epoch with the best accuracy on the validation split (never the test split).
    """

    name: str
    epochs: int
    lr: float
    train_weights: bool = True
    codebook_lr_scale: float = 1.0
    mode: str = "lut"
    backward: str = "exact"
    temperature: tuple[float, float] = (1.0, 0.1)
    task_weight: float = 1.0
    recon_weight: float = 0.0
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    table_bits: int = 8
    batch_size: int = 64
    weight_decay: float = 0.0
    dead_restart: bool = False
    bn_reestimate: bool = True  # re-estimate BatchNorm statistics at the end of the stage
    freeze_bn: bool = False  # keep BatchNorm in eval mode while training (running stats fixed)
    select_best: bool = False  # end the stage with the epoch of best VALIDATION accuracy (never test)
    min_steps: int = 0  # at least this many optimizer steps: epochs raised for small training sets (`for_data`)
    skip: bool = False

    def __post_init__(self):
        if self.name not in STAGE_NAMES[1:]:
            raise ValueError(f"TrainStage.name={self.name!r} must be one of {STAGE_NAMES[1:]}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"TrainStage({self.name}).epochs={self.epochs!r} must be an integer >= 0")
        _positive(f"TrainStage({self.name}).lr", self.lr)
        _positive(f"TrainStage({self.name}).codebook_lr_scale", self.codebook_lr_scale, allow_zero=True)
        for f in ("task_weight", "recon_weight", "distill_weight", "weight_decay"):
            _positive(f"TrainStage({self.name}).{f}", getattr(self, f), allow_zero=True)
        _positive(f"TrainStage({self.name}).distill_temperature", self.distill_temperature)
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"TrainStage({self.name}).mode={self.mode!r} must be one of {TRAIN_MODES}")
        if self.backward not in BACKWARDS:
            raise ValueError(f"TrainStage({self.name}).backward={self.backward!r} must be one of {BACKWARDS}")
        t = tuple(self.temperature)
        if len(t) != 2:
            raise ValueError(f"TrainStage({self.name}).temperature={self.temperature!r} must be (start, end)")
        for x in t:
            _positive(f"TrainStage({self.name}).temperature", x)
        object.__setattr__(self, "temperature", (float(t[0]), float(t[1])))
        if self.task_weight + self.recon_weight + self.distill_weight <= 0:
            raise ValueError(f"TrainStage({self.name}): all loss weights are 0, nothing would be learned")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"TrainStage({self.name}).batch_size={self.batch_size!r} must be an integer >= 1")
        if isinstance(self.min_steps, bool) or not isinstance(self.min_steps, int) or self.min_steps < 0:
            raise ValueError(f"TrainStage({self.name}).min_steps={self.min_steps!r} must be an integer >= 0")

        check_table_bits(self.table_bits, f"TrainStage({self.name}).table_bits")


def _default_stages() -> tuple:
    # Measured (INT8 test accuracy, v=4 c=16; tools/lutboost_acceptance.py, 3 seeds unless said):
    # - calibrate bn_per_layer: mnist1d CNN seed 0 after calibration l2/l1/cheb 94.2/88.4/93.3 -> 96.7/96.1/96.9,
    #   final 98.0/97.1/97.5 -> 98.3/98.5/98.2 (fp32 98.7): the largest single gain.
    # - 1 centroid epoch + 6 joint (was 2 + 5) at joint lr 1e-3 (was 5e-4), select_best on val (before
    #   bn_per_layer): digits CNN drops 0.30/0.52/0.37 -> 0.15/0.15/0.15 pt (noise: 1 test image = 0.22 pt).
    # - all of it: digits CNN 0.22/0.15/0.22 pt (single-stage, same 8 epochs and lr: 0.22/0.67/0.37), about
    #   9-12 s per run; mnist1d CNN 0.67/0.53/0.77 pt (single-stage 2.40/1.73/5.37), 22-24 s per run.
    # - centroid stage with backward="soft": mnist1d seed 0 -1.4..+0.9 pt per metric for 10-20 s more: left off.
    # - calibrate refit (issue 14, zoo, held-out seed 1, digits L2/L1): k-means-only accuracy of the token models
    #   36-68 % -> 84-88 %; final token models +0.2..+6.5 pt, CNNs/MLP within noise (docs/lutboost-zoo.md).
    return (
        CalibrateStage(),
        # centroid lr 1e-3 (was 1e-2): mnist1d CNN, L1, seed 0: 87.4 -> 95.3 %; digits L1 seed 0: 99.11 -> 99.33 %
        TrainStage("centroids", epochs=1, lr=1e-3, train_weights=False, recon_weight=1.0),
        # min_steps=600: a small training set gets as many optimizer steps as 6 epochs of ~6,400 examples (digits,
        # 1,097 examples: 34 epochs); measured on the zoo (docs/lutboost-zoo.md)
        TrainStage("joint", epochs=6, lr=1e-3, codebook_lr_scale=4.0, recon_weight=1.0, distill_weight=1.0,
                   dead_restart=True, select_best=True, min_steps=600),
        TrainStage("lut_qat", epochs=1, lr=1e-4, mode="quant", codebook_lr_scale=4.0, recon_weight=1.0,
                   distill_weight=1.0),
    )


@dataclass(frozen=True)
class LUTBoostConfig:
    """The full schedule: the four stages in order (calibrate, centroids, joint, lut_qat). ``keep_best``: after
    every stage keep the best state on the validation split so far (a stage that makes it worse is rolled
    back; the run returns the best state it has seen)."""

    stages: tuple = field(default_factory=_default_stages)
    keep_best: bool = True

    def __post_init__(self):
        st = tuple(self.stages)
        names = tuple(s.name for s in st)
        if names != STAGE_NAMES:
            raise ValueError(f"LUTBoostConfig.stages must be the stages {STAGE_NAMES} in this order; got {names}")
        if not isinstance(st[0], CalibrateStage) or not all(isinstance(s, TrainStage) for s in st[1:]):
            raise TypeError("LUTBoostConfig.stages: stage 0 must be a CalibrateStage, stages 1-3 TrainStages")
        object.__setattr__(self, "stages", st)
        if not isinstance(self.keep_best, bool):
            raise TypeError(f"LUTBoostConfig.keep_best={self.keep_best!r} must be True or False")

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages if not s.skip)

    def for_data(self, n_train: int) -> "LUTBoostConfig":
        """The schedule for a training set of ``n_train`` examples: every training stage with ``min_steps`` gets
        enough epochs for that many optimizer steps (batches of its ``batch_size``); ``min_steps`` is then
        cleared, so the result states the epochs that will run (and resolving twice changes nothing)."""
        if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
            raise ValueError(f"n_train={n_train!r} must be an integer >= 1 (the number of training examples)")
        out = []
        for s in self.stages:
            if isinstance(s, TrainStage) and s.min_steps and s.epochs:
                per_epoch = math.ceil(n_train / s.batch_size)
                s = replace(s, epochs=max(s.epochs, math.ceil(s.min_steps / per_epoch)), min_steps=0)
            out.append(s)
        return LUTBoostConfig(tuple(out), self.keep_best)

    def with_stage(self, name: str, **changes) -> "LUTBoostConfig":
        """A copy with one stage's fields changed, e.g. ``cfg.with_stage("joint", epochs=10)``."""
        return LUTBoostConfig(tuple(replace(s, **changes) if s.name == name else s for s in self.stages),
                              self.keep_best)

    def scaled(self, factor: float) -> "LUTBoostConfig":
        """A copy with every training stage's epochs (rounded, at least 1) and ``min_steps`` multiplied by
        ``factor``."""
        return LUTBoostConfig(tuple(s if isinstance(s, CalibrateStage) else
                                    replace(s, epochs=max(1, int(round(s.epochs * factor))),
                                            min_steps=int(round(s.min_steps * factor)))
                                    for s in self.stages), self.keep_best)

    def to_dict(self) -> dict:
        return {"stages": [asdict(s) for s in self.stages], "keep_best": self.keep_best}
