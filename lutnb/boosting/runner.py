"""LUTBoost: multistage conversion of a trained fp32 model into a LUT model, and a single-stage baseline.

Stages (see docs/paper.md, "Our decisions"; every stage is a frozen, validated config and can be skipped):

0. ``calibrate``  - k-means per sub-space on each layer's inputs (optionally layer by layer, feeding each
   layer the outputs of the already-quantized layers before it), with BatchNorm re-estimation after each
   layer (``bn_per_layer``; default) or once at the end.
1. ``centroids``  - weights frozen; centroids learn from the two-sided reconstruction loss, and from the
   task/distillation loss only with ``backward="soft"`` (the straight-through backward, the default,
   passes the task gradient to the layer's input and weights, not to the codebooks).
2. ``joint``      - weights and centroids learn, optionally distilled from the fp32 teacher; by default
   the stage ends with its epoch of best validation accuracy (``select_best``).
3. ``lut_qat``    - tables fake-quantized to ``table_bits`` ("quant" mode with grad: value of the INT-b
   tables, straight-through gradient), short fine-tune.

``lutboost(...)`` returns ``(lut_model, report)``; ``report.to_frame()`` / ``str(report)`` give the
per-stage table, ``report.to_dict()`` the JSON. A checkpoint is written atomically after every stage;
``resume=True`` continues from the last finished one and ends bit-identical to an uninterrupted run.
``single_stage(...)`` is the LUT-NN style baseline (k-means init + one end-to-end fine-tune).
Under ``torchrun`` (an initialised process group of several processes) the training stages run data-parallel
(`lutnb.boosting.distributed`); ``amp="bf16"`` trains under bfloat16 autocast.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..files import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..runtime import (
    deterministic_mode,
    device_of,
    loaders,
    progress_disabled,
    rng_state,
    seed_everything,
    set_rng_state,
)
from ..vq.calibration import calibrate
from ..vq.conversion import convert, resolve_skip, trace_layers
from ..vq.layers import lut_layers, set_mode
from . import distributed
from .config import STAGE_NAMES, CalibrateStage, LUTBoostConfig, TrainStage
from .refit import refit_to_teacher
from .report import LUTBoostReport, StageResult
from .steps import accuracy, check_amp, layer_stats, reestimate_batchnorm, run_train_stage


class ResumeMismatchError(RuntimeError):
    """A checkpoint was written by a run with a different configuration."""


# ------------------------------------------------------------------------------------------ checkpoints
def _rng_state() -> dict:
    return rng_state()  # torch CPU and CUDA, NumPy, Python (lutnb.runtime)


def _set_rng_state(st: dict) -> None:
    set_rng_state(st)


def _ckpt_path(checkpoint_dir, i: int) -> Path:
    return Path(checkpoint_dir) / f"stage{i}_{STAGE_NAMES[i]}.pt"


def _fingerprint(**kw) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


def weights_hash(model: nn.Module | None) -> str | None:
    """SHA-256 of a model's state_dict (names, dtypes, shapes and bytes, in name order); None for None."""
    if model is None:
        return None
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(value.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def data_hash(dataset) -> str | None:
    """SHA-256 of a data set's contents: every tensor of a TensorDataset; for other data sets, their length and
    the first and last samples (hashing every sample of a lazily loaded set would cost a pass over it)."""
    if dataset is None:
        return None
    h = hashlib.sha256()

    def add(t):
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())

    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        for t in tensors:
            add(t)
    else:
        n = len(dataset)
        h.update(str(n).encode())
        for i in {0, n - 1} if n else ():
            for t in dataset[i]:
                add(t)
    return h.hexdigest()


def _fingerprint_diff(saved: str, now: str) -> list[str]:
    """What differs between two fingerprints, as 'key (checkpoint X, now Y)' phrases."""
    try:
        a = json.loads(saved)
    except (TypeError, ValueError):
        return [f"the whole fingerprint (checkpoint {str(saved)[:60]!r})"]
    b = json.loads(now)
    if not isinstance(a, dict):
        return ["the whole fingerprint"]
    names = {"weights": "the fp32 model's weights (state_dict hash)", "teacher": "the teacher's weights",
             "train_data": "the training data (hash)", "val_data": "the validation data (hash)",
             "cfg": "the stage configuration (stages=)"}
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            hashes = ("weights", "teacher", "train_data", "val_data")
            width = 12 if k in hashes else 40  # hashes: a prefix is enough to tell them apart
            va, vb = (str(x)[:width] for x in (a.get(k, "<absent>"), b.get(k, "<absent>")))
            out.append(f"{names.get(k, k)} (checkpoint {va}, now {vb})")
    return out


def _check_dataset(name: str, data, required: bool) -> None:
    """Refuse a missing or empty dataset before any work (an empty one would fail deep in the sampler)."""
    if isinstance(data, torch.utils.data.DataLoader):
        raise TypeError(f"{name}= is a DataLoader; LUTBoost needs the dataset of (x, y) examples (it makes its own "
                        f"batches per stage): pass {name}=loader.dataset")
    if data is None:
        if required:
            raise ValueError(f"{name}=None: LUTBoost needs a {name} dataset of (x, y) examples")
        return
    try:
        n = len(data)
    except TypeError:  # an iterable without a length: nothing to check up front
        return
    if n == 0:
        raise ValueError(f"{name}= is empty (0 examples): LUTBoost needs at least one batch of {name} data; "
                         f"pass a non-empty dataset")


# ---------------------------------------------------------------------------------------------- lutboost
def prepare_model(model, v, c, metric, skip, overrides, table_bits, layout, example=None):
    """The LUT copy of ``model`` (float tables); ``skip`` resolved by `lutnb.vq.conversion.resolve_skip`
    ("auto" = the first and the last layer the model calls on ``example``, and the narrow layers)."""
    skip = resolve_skip(model, skip, example, v, overrides)
    return convert(model, v, c, metric, skip=skip, overrides=overrides, table_bits=table_bits, layout=layout)


def float_share(model: nn.Module, names, example) -> dict:
    """{layer: share of the model's weight-layer MACs per example} for the layers left float (``names``: the
    skipped ones and those `convert` cannot take, e.g. nn.Conv1d): what the bits report must count next to
    the LUT layers' bits per activation."""
    macs = trace_layers(model, example)
    total = max(1, sum(macs.values()))
    return {n: macs[n] / total for n in names if n in macs}


def _best_so_far(report: LUTBoostReport, lut: nn.Module):
    """(val score, stage name, state) of the state ``lut`` holds now, from the stages already in ``report`` (a
    resumed run: every checkpoint holds the best state so far); None before any scored stage."""
    scored = [s for s in report.stages if not s.skipped and s.val_acc is not None and not s.rolled_back]
    if not scored:
        return None
    top = max(scored, key=lambda s: s.val_acc)
    return (top.val_acc, top.stage, copy.deepcopy(lut.state_dict()))


def _keep_best(lut: nn.Module, result: StageResult, best, report: LUTBoostReport):
    """After a stage: keep its state if its val score is at least the best so far (ties go to the later, more
    trained state), else roll the model back to the best state. Returns the new (score, stage, state)."""
    if best is None or result.val_acc >= best[0]:
        report.selected_stage = result.stage
        return (result.val_acc, result.stage, copy.deepcopy(lut.state_dict()))
    lut.load_state_dict(best[2])
    result.rolled_back = True
    return best


def _evaluate_stage(lut, name, epochs, seconds, val, test, history, stats_batches) -> StageResult:
    return StageResult(stage=name, epochs=epochs, seconds=seconds,
                       test_acc_lut=accuracy(lut, test, "lut") if test is not None else None,
                       test_acc_int8=accuracy(lut, test, "quant") if test is not None else None,
                       val_acc=accuracy(lut, val, "quant") if val is not None else None,
                       layers=layer_stats(lut, val if val is not None else test, batches=stats_batches),
                       history=history)


def lutboost(model: nn.Module, train, val, v: int = 4, c: int = 16, metric: str = "l1", skip="auto",
             stages: LUTBoostConfig | None = None, seed: int = 0, checkpoint_dir=None, resume: bool = False,
             teacher: nn.Module | None = None, progress: bool = True, test=None, overrides=None,
             layout: str = "channel", track_test: bool = False,
             callback: Callable[[str, nn.Module, "LUTBoostReport"], Any] | None = None,
             method: str = "lutboost", deterministic: bool | str = True,
             amp: str | None = None) -> tuple[nn.Module, LUTBoostReport]:
    """Convert a trained fp32 ``model`` into a LUT model with LUTBoost; return ``(lut_model, report)``.

    train / val / test: datasets of (x, y); test (optional) is only evaluated, after every stage (and after
    every epoch with ``track_test=True``, for convergence curves). ``skip``: layers kept float: names or
    globs (absent ones are ignored), the position tokens "first" / "last" (the first / last layer the model
    calls), "narrow" (layers with fewer than 4 sub-spaces, ceil(K / v) < 4), or "auto" (default) =
    ("first", "last", "narrow"); the report's ``float_layers`` gives their share of the
    model's MACs. ``stages``: a ``LUTBoostConfig`` (default schedule if None). ``teacher``:
    the fp32 model for distillation (default: a copy of ``model``). ``checkpoint_dir``: a checkpoint is
    written atomically after every stage; ``resume=True`` continues after the last one found there.
    ``callback(stage_name, lut_model, report)`` runs after every stage (raise from it to abort). The input
    model is not modified. The returned model is in "quant" mode (INT-b tables). ``deterministic``: run
    with ``torch.use_deterministic_algorithms`` (the CPU scatter-add in the codebook gradient is otherwise
    order-dependent at the last bit, and a resumed run would drift from an uninterrupted one); on CUDA strict
    (see `lutnb.runtime.deterministic_mode`; "warn" to only warn). ``amp="bf16"``: training forwards under
    bfloat16 autocast (equal to float32 within the tolerance tests/test_boosting.py states).

    Never worse than a state it has seen (``stages.keep_best``, default on): after the calibration and after
    every stage the model is scored on ``val`` with INT-b tables; a stage that ends below the best score so
    far is rolled back (the next stage starts from the best state) and the run returns the best state; the
    report says which stage's state won (``selected_stage``). Without ``val`` nothing is selected.
    """
    check_amp(amp)
    with deterministic_mode(deterministic, device_of(model)):
        return _lutboost(model, train, val, v, c, metric, skip, stages, seed, checkpoint_dir, resume, teacher,
                         progress, test, overrides, layout, track_test, callback, method, amp)


def _resolve_config(stages) -> LUTBoostConfig:
    """``stages`` as a LUTBoostConfig (the default schedule for None, a tuple of stages wrapped)."""
    cfg = stages if stages is not None else LUTBoostConfig()
    if not isinstance(cfg, LUTBoostConfig):
        cfg = LUTBoostConfig(tuple(cfg))
    return cfg


def _for_data(cfg: LUTBoostConfig, train) -> LUTBoostConfig:
    """``cfg`` with its ``min_steps`` resolved into epochs for ``train`` (unchanged for a set without a length)."""
    try:
        n = len(train)
    except TypeError:
        return cfg
    return cfg.for_data(n) if n else cfg


def _frozen_teacher(model: nn.Module, teacher: nn.Module | None, cfg: LUTBoostConfig) -> nn.Module | None:
    """The distillation teacher, frozen: a copy of ``model`` when none is given and a stage distills."""
    if teacher is None and any(isinstance(s, TrainStage) and s.distill_weight > 0 and not s.skip
                               for s in cfg.stages):
        teacher = copy.deepcopy(model).eval()
    if teacher is not None:
        for p in teacher.parameters():
            p.requires_grad_(False)
    return teacher


def _resume(lut: nn.Module, report: LUTBoostReport, checkpoint_dir, fp: str) -> tuple[LUTBoostReport, int]:
    """Load the last stage checkpoint in ``checkpoint_dir`` (model, report, RNG state); (report, next stage)."""
    for i in reversed(range(len(STAGE_NAMES))):
        p = _ckpt_path(checkpoint_dir, i)
        if p.exists():
            ck = load_checkpoint(p)
            need = ("fingerprint", "model", "report", "rng")
            if not isinstance(ck, dict) or any(k not in ck for k in need):
                raise CheckpointError(f"checkpoint {p} is damaged or not a LUTBoost stage checkpoint (it needs "
                                      f"the entries {list(need)}); delete it, or resume=False")
            if ck["fingerprint"] != fp:
                diff = "; ".join(_fingerprint_diff(ck["fingerprint"], fp))
                raise ResumeMismatchError(f"checkpoint {p} was written by a different run: {diff}; "
                                          "use another checkpoint_dir or resume=False")
            lut.load_state_dict(ck["model"])
            report = LUTBoostReport.from_dict(json.loads(ck["report"]))
            report.resumed_from = str(p)
            _set_rng_state(ck["rng"])
            return report, i + 1
    return report, 0


def _calibrate_stage(lut: nn.Module, st: CalibrateStage, train, seed: int, i: int, model: nn.Module) -> dict:
    """Stage 0: k-means on training batches (layer by layer or all at once), the optional refit of each layer
    to the fp32 ``model``'s output (``st.refit``) and BatchNorm re-estimation. Returns the refit stats."""
    seed_everything(seed + 1000 * i)
    dev = device_of(lut)
    cal_batches = [x.to(dev) for k, (x, _) in zip(range(st.batches), loaders(train, st.batch_size, True, seed))]
    refits = {}
    if st.sequential and (st.refit or (st.bn_reestimate and st.bn_per_layer)):
        # layer by layer, re-estimating BatchNorm after each: the next layer's k-means then sees
        # the activations it will get at inference (fresh BN statistics after the quantized layers)
        for k, (name, _) in enumerate(list(lut_layers(lut))):
            calibrate(lut, cal_batches, max_rows=st.max_rows, iters=st.iters, seed=seed + k,
                      max_batches=st.batches, sequential=True, layers=[name])
            if st.refit:
                refits[name] = refit_to_teacher(lut, model, name, cal_batches, seed=seed + k)
            if not (st.bn_reestimate and st.bn_per_layer):
                continue
            pending = {m: m.mode for _, m in lut_layers(lut) if not bool(m.calibrated)}
            for m in pending:  # not calibrated yet: run them float while the statistics are taken
                m.mode = "exact"
            reestimate_batchnorm(lut, train, batches=st.batches, batch_size=st.batch_size, seed=seed)
            for m, mode in pending.items():
                m.mode = mode
        if st.bn_reestimate and not st.bn_per_layer:
            reestimate_batchnorm(lut, train, batches=st.batches, batch_size=st.batch_size, seed=seed)
    else:
        calibrate(lut, cal_batches, max_rows=st.max_rows, iters=st.iters,
                  seed=seed, max_batches=st.batches, sequential=st.sequential)
        if st.refit:  # every layer quantized: refit in call order, each on its quantized predecessors' outputs
            for k, (name, _) in enumerate(list(lut_layers(lut))):
                refits[name] = refit_to_teacher(lut, model, name, cal_batches, seed=seed + k)
        if st.bn_reestimate:
            reestimate_batchnorm(lut, train, batches=st.batches, batch_size=st.batch_size, seed=seed)
    return refits


def _train_stage(lut: nn.Module, teacher, st: TrainStage, i: int, train, val, test, seed: int, progress: bool,
                 track_test: bool, amp: str | None = None) -> list:
    """A training stage, then (``bn_reestimate``) BatchNorm re-estimated in the stage's mode; the history."""
    hist = run_train_stage(lut, teacher, st, train, val, test, seed + 1000 * i, progress, track_test, amp=amp)
    if st.bn_reestimate:
        set_mode(lut, st.mode)
        reestimate_batchnorm(lut, train, batches=8, batch_size=256, seed=seed + i)
        set_mode(lut, "lut")
    return hist


def _save_stage(checkpoint_dir, lut: nn.Module, i: int, st, fp: str, report: LUTBoostReport) -> None:
    """Write stage ``i``'s checkpoint (model, report, RNG state) and report.json, atomically (rank 0 of a
    process group writes, the others wait for it)."""
    ctx = distributed.current()
    if ctx is not None and not ctx.is_main:
        distributed.barrier()
        return
    save_checkpoint({"model": lut.state_dict(), "stage_index": i, "stage": st.name,
                     "fingerprint": fp, "report": json.dumps(report.to_dict()), "rng": _rng_state()},
                    _ckpt_path(checkpoint_dir, i))
    atomic_write_bytes(Path(checkpoint_dir) / "report.json",
                       (json.dumps(report.to_dict(), indent=1, default=float) + "\n").encode())
    distributed.barrier()


def _lutboost(model, train, val, v, c, metric, skip, stages, seed, checkpoint_dir, resume, teacher, progress,
              test, overrides, layout, track_test, callback, method, amp=None):
    from tqdm.auto import tqdm

    cfg = _resolve_config(stages)
    ctx = distributed.current()  # several processes: each trains on its slice of every batch
    progress = progress and (ctx is None or ctx.is_main)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir= (where the stage checkpoints were written)")
    _check_dataset("train", train, required=True)
    _check_dataset("val", val, required=False)
    _check_dataset("test", test, required=False)
    cfg = _for_data(cfg, train)
    teacher_hash = weights_hash(teacher)
    model = copy.deepcopy(model).eval()
    model_hash = weights_hash(model)
    teacher = _frozen_teacher(model, teacher, cfg)
    fp32_acc = accuracy(model, test) if test is not None else float("nan")
    seed_everything(seed)
    example = next(iter(loaders(train, 2, False, 0)))[0].to(device_of(model))
    skip = resolve_skip(model, skip, example, v, overrides)
    lut = prepare_model(model, v, c, metric, skip, overrides, cfg.stages[-1].table_bits, layout)
    if not lut.lut_summary.converted:
        why = "; ".join(f"{r.name}: {r.reason}" for r in lut.lut_summary.left_alone) or "it has no weight layers"
        raise ValueError(f"lutboost: no layer of the model can become a LUT layer ({why}). LUT layers replace "
                         f"nn.Linear and nn.Conv2d (skip={tuple(skip)!r} keeps some float; skip=() converts all)")
    set_mode(lut, "lut")
    fp = _fingerprint(v=v, c=c, metric=metric, skip=skip, seed=seed, cfg=cfg.to_dict(), method=method,
                      weights=model_hash, overrides=overrides, layout=layout, teacher=teacher_hash,
                      train_data=data_hash(train), val_data=data_hash(val), **({"amp": amp} if amp else {}))
    report = LUTBoostReport(method, v, c, lut.lut_summary.converted[0].metric if lut.lut_summary.converted
                            else metric, seed, fp32_acc, [], cfg.to_dict())
    report.float_layers = float_share(model, [r.name for r in lut.lut_summary.left_alone], example)
    start = 0
    if resume:
        report, start = _resume(lut, report, checkpoint_dir, fp)
    stats_batches = 2
    best = _best_so_far(report, lut)
    bar = tqdm(list(enumerate(cfg.stages))[start:], desc=method, disable=progress_disabled(progress))
    for i, st in bar:
        bar.set_postfix(stage=st.name)
        tic = time.perf_counter()
        if st.skip or (isinstance(st, TrainStage) and st.epochs == 0):
            report.stages.append(StageResult(st.name, 0, 0.0, None, None, None, {}, [], skipped=True))
        else:
            if isinstance(st, CalibrateStage):
                report.refit = _calibrate_stage(lut, st, train, seed, i, model)
                hist = []
            else:
                hist = _train_stage(lut, teacher, st, i, train, val, test, seed, progress, track_test, amp)
            result = _evaluate_stage(lut, st.name, len(hist), time.perf_counter() - tic, val, test, hist,
                                     stats_batches)
            report.stages.append(result)
            if cfg.keep_best and result.val_acc is not None:
                best = _keep_best(lut, result, best, report)
        if checkpoint_dir is not None:
            _save_stage(checkpoint_dir, lut, i, st, fp, report)
        if callback is not None:
            callback(st.name, lut, report)
    set_mode(lut, "quant")
    lut.eval()
    lut.lutboost_report = report
    return lut, report


def single_stage(model: nn.Module, train, val, v: int = 4, c: int = 16, metric: str = "l1", skip="auto",
                 epochs: int | None = None, lr: float | None = None, seed: int = 0, recon_weight: float = 1.0,
                 backward: str = "exact", calibrate_stage: CalibrateStage | None = None,
                 reference: LUTBoostConfig | None = None, **kw):
    """LUT-NN style baseline at LUTBoost's budget, in the same API: k-means init, then ONE end-to-end fine-tune
    of weights and centroids (task loss through the straight-through estimator + reconstruction; no
    distillation, no staged schedule, no INT8 fine-tune), evaluated with INT8 tables like LUTBoost.

    Fair by default: against ``reference`` (default: the default LUTBoost schedule) it gets the same
    calibration (``calibrate_stage``, default the reference's: k-means and BatchNorm re-estimation), the same
    total epochs (``epochs``), the joint stage's learning rate (``lr``), codebook lr scale, batch size, AdamW
    and cosine schedule, BatchNorm re-estimated at the end, and the same keep-best guard on ``val``."""
    ref = _for_data(_resolve_config(reference), train)
    joint = ref.stages[2]
    cal = calibrate_stage or ref.stages[0]
    st = TrainStage("joint", epochs=ref.total_epochs if epochs is None else epochs,
                    lr=joint.lr if lr is None else lr, codebook_lr_scale=joint.codebook_lr_scale,
                    batch_size=joint.batch_size, weight_decay=joint.weight_decay, recon_weight=recon_weight,
                    backward=backward, table_bits=ref.stages[-1].table_bits)
    cfg = LUTBoostConfig((cal, TrainStage("centroids", epochs=0, lr=1e-3, train_weights=False, skip=True), st,
                          TrainStage("lut_qat", epochs=0, lr=1e-3, mode="quant", skip=True,
                                     table_bits=ref.stages[-1].table_bits)), ref.keep_best)
    return lutboost(model, train, val, v=v, c=c, metric=metric, skip=skip, stages=cfg, seed=seed,
                    method="single_stage", **kw)
