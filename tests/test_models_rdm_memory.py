"""Model RDMs under a memory budget: rows beyond it spill to disk, the RDMs do not change."""
from __future__ import annotations

import platform
import sys

import numpy as np
import pytest
import torch

import brainalign
from brainalign.evaluate.model_sources import ModelSource
from brainalign.evaluate.models_rdm import model_rdms
from brainalign.features import iter_features
from brainalign.models.registry import spec_of


def test_rows_over_the_shared_budget_spill_and_give_the_same_rdms(monkeypatch):
    from brainalign.rsa import compute

    torch.manual_seed(0)
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    layers = list(spec_of(net).layers)
    source = ModelSource(label="tiny", model=net, spec=spec_of(net), layers=layers, layer_labels=layers)
    images = torch.rand(10, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    spilled = []
    real = compute._RowFile.__init__

    def record(self, n_rows, n_features, *a, **kw):
        spilled.append(n_features)
        real(self, n_rows, n_features, *a, **kw)

    monkeypatch.setattr(compute._RowFile, "__init__", record)
    in_memory = model_rdms(source, images, batch_size=4, progress=False, rows_in_memory_bytes=2**30)
    assert spilled == []
    widths = [b[layers[0]].shape[1] for _, b in iter_features(net, images[:1], layers[:1], progress=False)]
    # room for the first (widest) layer's rows only: the others spill, and all give the same bits
    budget = 10 * widths[0] * 4
    on_disk = model_rdms(source, images, batch_size=4, progress=False, rows_in_memory_bytes=budget)
    assert len(spilled) == 3
    np.testing.assert_array_equal(on_disk, in_memory)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc_trim is glibc's")
def test_memory_of_a_dropped_model_goes_back_to_the_system_on_glibc():
    from brainalign.analyses import context

    assert context._malloc_trim is not None
    context.release_memory()  # gc + malloc_trim + CUDA cache: callable between models
