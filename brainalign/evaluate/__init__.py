"""Evaluation: compare models with neural data, robustness, individual variability, reports.

Modules (one job each): ``outputs`` (safe output folders), ``cache`` (hash-checked disk
cache), ``model_sources`` (MODEL strings -> models), ``eeg`` / ``fmri`` (RSA analyses),
``robustness`` (FGSM/PGD), ``zero_shot`` (CLIP zero-shot heads), ``variability``,
``figures``, ``report`` (results.json, tidy CSV, report.md), ``demo`` (the end-to-end demo).
"""
