"""lutnb.boosting: LUTBoost, the multistage training that turns an fp32 model into a LUT model.

``config`` (stage configs), ``steps`` (what a stage is made of), ``runner`` (`lutboost`, `single_stage`,
checkpoints and resume), ``report`` (per-stage results), ``refit`` (block-wise refit against a teacher),
``distill`` (distillation), ``embeddings`` (calling models on batches, fidelity metrics).
The package is named ``boosting`` because ``lutnb.lutboost`` is the function users call.
"""
from .config import STAGE_NAMES, CalibrateStage, LUTBoostConfig, TrainStage
from .distill import distill_classifier, distill_embeddings
from .embeddings import fidelity, sentence_embeddings
from .refit import block_refit
from .report import LUTBoostReport, StageResult
from .runner import ResumeMismatchError, lutboost, single_stage
from .steps import accuracy, reestimate_batchnorm, restart_dead_centroids

__all__ = ["STAGE_NAMES", "CalibrateStage", "LUTBoostConfig", "LUTBoostReport", "ResumeMismatchError", "StageResult",
           "TrainStage", "accuracy", "block_refit", "distill_classifier", "distill_embeddings", "fidelity", "lutboost",
           "reestimate_batchnorm", "restart_dead_centroids", "sentence_embeddings", "single_stage"]
