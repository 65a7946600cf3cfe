"""Alignment of vision models with neural data (ReAlnet, generalised).

    aligned = brainalign.align(model, layers=["V1", "V2", "V4", "IT"], eeg=train_dataset)  # AlignedModel
    aligned.save("aligned.pt");  aligned = brainalign.load_aligned("aligned.pt")
    aligned.save_pretrained("my-model");  brainalign.load_aligned("my-model")  # or "hf-hub:owner/name"

Modules: head (encoder head), losses (soft ranks, differentiable Spearman, task losses),
teacher (cached teacher targets), trainer (the loop), checkpoint (atomic files, resume),
distributed (torchrun/DDP), classifier (brief concept training for demos), api (align),
grid (run_grid: subject x beta x control runs), executors (in-process, local
processes, Slurm via submitit), aligned_model (AlignedModel, save/load), hub (save_pretrained folders, hf-hub: loading).
"""
from .aligned_model import AlignedModel, load_aligned, predict_responses, save_aligned
from .api import align
from .classifier import train_classifier
from .executors import InProcess, LocalParallel, Submitit
from .grid import GridResult, run_grid
from .head import EncoderHead

__all__ = ["align", "AlignedModel", "load_aligned", "save_aligned", "EncoderHead", "train_classifier",
           "predict_responses", "run_grid", "GridResult", "InProcess", "LocalParallel", "Submitit"]


def __getattr__(name: str):
    if name == "AlignResult":  # deprecated alias of AlignedModel (warns)
        from . import api

        return api.AlignResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
