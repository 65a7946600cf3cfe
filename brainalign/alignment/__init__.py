"""Alignment of vision models with neural data (ReAlnet, generalised).

    result = brainalign.align(model, layers=["V1", "V2", "V4", "IT"], eeg=train_dataset)
    result.save("aligned.pt");  model = brainalign.load_aligned("aligned.pt")

Modules: head (encoder head), losses (soft ranks, differentiable Spearman, task losses),
teacher (cached teacher targets), trainer (the loop), checkpoint (atomic files, resume),
distributed (torchrun/DDP), classifier (brief concept training for demos), api (align).
"""
from .api import AlignResult, align, load_aligned, predict_responses, save_aligned
from .classifier import train_classifier
from .head import EncoderHead

__all__ = ["align", "load_aligned", "save_aligned", "AlignResult", "EncoderHead", "train_classifier",
           "predict_responses"]
