"""lutnb.boosting: LUTBoost, the multistage training that turns an fp32 model into a LUT model.

``config`` (stage configs), ``steps`` (what a stage is made of), ``runner`` (`lutboost`, `single_stage`,
checkpoints and resume), ``report`` (per-stage results), ``refit`` (block-wise refit against a teacher),
``distill`` (distillation), ``embeddings`` (calling models on batches, fidelity metrics), ``distributed``
(data-parallel LUTBoost under ``torchrun``).
The package is named ``boosting`` because ``lutnb.lutboost`` is the function users call.
"""
from .config import STAGE_NAMES, TRAIN_MODES, CalibrateStage, LUTBoostConfig, TrainStage
from .distill import distill_classifier, distill_embeddings
from .embeddings import fidelity, sentence_embeddings
from .refit import block_refit
from .report import LUTBoostReport, StageResult
from .runner import ResumeMismatchError, lutboost, single_stage
from .steps import accuracy, layer_stats, reestimate_batchnorm, restart_dead_centroids

__all__ = ["STAGE_NAMES", "TRAIN_MODES", "CalibrateStage", "LUTBoostConfig", "LUTBoostReport", "ResumeMismatchError",
           "StageResult", "TrainStage", "accuracy", "block_refit", "distill_classifier", "distill_embeddings",
           "fidelity", "layer_stats", "lutboost", "reestimate_batchnorm", "restart_dead_centroids",
           "sentence_embeddings", "single_stage"]

MOVED = {"compare": "lutnb.experiments.compare", "summarize": "lutnb.experiments.compare"}


def __getattr__(name: str):
    if name in MOVED:  # lutnb 0.1 had them here; they run experiments, so they left the training package
        # ImportError, not AttributeError: `from lutnb.boosting import compare` then shows this message
        raise ImportError(f"lutnb.boosting.{name} moved to {MOVED[name]}.{name}")
    raise AttributeError(f"module 'lutnb.boosting' has no attribute {name!r}")
