"""Pooling and batched feature extraction."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import brainalign
from brainalign.data.dataset import NeuralDataset
from brainalign.data.images import ImageSet
from brainalign.errors import ConfigError, DataError, LayerError
from brainalign.features import extract_features, iter_features, pool


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")


@pytest.fixture(scope="module")
def images():
    return torch.rand(7, 3, 48, 48, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("shape,pooling,expected", [
    ((2, 4, 6, 6), "flatten", (2, 144)), ((2, 4, 6, 6), "none", (2, 144)), ((2, 4, 6, 6), "avg", (2, 4)),
    ((2, 4, 6, 6), "adaptive2", (2, 16)), ((2, 4, 6, 6), "Adaptive3", (2, 36)),
    ((2, 50, 8), "avg", (2, 8)), ((2, 50, 8), "adaptive2", (2, 32)),  # class token + 7x7 patches
    ((2, 49, 8), "adaptive1", (2, 8)), ((2, 50, 8), "flatten", (2, 400)), ((2, 10), "avg", (2, 10)),
])
def test_pool_shapes(shape, pooling, expected):
    assert pool(torch.rand(shape), pooling).shape == expected


def test_pool_values():
    t = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 2, 4, 4)
    assert torch.equal(pool(t, "avg"), t.mean(dim=(2, 3)))
    assert torch.equal(pool(t, "adaptive2")[0, :4], torch.tensor([2.5, 4.5, 10.5, 12.5]))
    tokens = torch.rand(1, 5, 3)  # class token + 2x2 grid
    grid = pool(tokens, "adaptive1")
    assert torch.allclose(grid, tokens[:, 1:].mean(dim=1))


def test_pool_errors():
    with pytest.raises(ConfigError, match="unknown pooling 'max'"):
        pool(torch.rand(2, 3), "max")
    with pytest.raises(ConfigError, match="adaptive0|unknown pooling"):
        pool(torch.rand(2, 3, 4, 4), "adaptive0")
    with pytest.raises(ConfigError, match="square grid"):
        pool(torch.rand(2, 7, 3), "adaptive2")


def test_extract_matches_a_manual_forward(tiny, images):
    spec = brainalign.models.spec_of(tiny)
    feats = extract_features(tiny, images, batch_size=3, progress=False)
    assert list(feats) == ["V1", "V2", "V4", "IT"]
    with brainalign.LayerTap(tiny, ["V1", "IT"]) as tap, torch.inference_mode():
        tap.run(spec.preprocessing(images))  # default preprocessing = the spec's (64x64, ImageNet stats)
    assert feats["IT"].shape == (7, 128 * 2 * 2) and feats["IT"].dtype == np.float32
    # batch 3 vs 7 may pick other float32 conv kernels: agreement to float32 accumulation error
    np.testing.assert_allclose(feats["IT"], tap.outputs["IT"].flatten(1).numpy(), rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(feats["V1"], tap.outputs["V1"].flatten(1).numpy(), rtol=1e-3, atol=2e-4)


def test_batch_size_labels_pooling_and_input_types(tiny, images):
    a = extract_features(tiny, images, ["v2", "IT"], batch_size=7, pooling="avg", progress=False)
    b = extract_features(tiny, ImageSet.from_array(images), ["V2", "IT"], batch_size=2, pooling="avg",
                         progress=False)
    ds = NeuralDataset(images=ImageSet.from_array(images), responses=np.zeros((7, 3)))
    c = extract_features(tiny, ds, ["V2", "IT"], batch_size=4, pooling="avg", progress=False)
    d = extract_features(tiny, images.numpy(), ["V2", "IT"], batch_size=5, pooling="avg", progress=False)
    assert a["V2"].shape == (7, 32) and a["IT"].shape == (7, 128)
    for other in (b, c, d):
        for k in a:
            np.testing.assert_allclose(a[k], other[k], rtol=1e-4, atol=1e-5)


def test_iter_features_batches_indices_dtype_and_device(tiny, images):
    seen = []
    for idx, batch in iter_features(tiny, images, ["V1"], batch_size=3, pooling="adaptive2", progress=False,
                                    dtype=torch.float64):
        seen.append(idx)
        assert batch["V1"].device.type == "cpu" and batch["V1"].dtype == torch.float64
        assert batch["V1"].shape == (len(idx), 16 * 4)
    assert [list(i) for i in seen] == [[0, 1, 2], [3, 4, 5], [6]]


def test_custom_preprocessing_and_plain_models(images):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    model(images[:1])
    with pytest.raises(ConfigError, match="layers="):
        extract_features(model, images, progress=False)
    feats = extract_features(model, images, ["1"], preprocessing=lambda x: x * 0, progress=False)
    expected = torch.relu(model[0].bias).repeat_interleave(46 * 46).expand(7, -1)
    np.testing.assert_allclose(feats["1"], expected.detach().numpy(), rtol=1e-6)


def test_eval_during_extraction_and_mode_restored(tiny, images):
    tiny.train()
    before = tiny.V1.norm1.running_mean.clone()
    try:
        extract_features(tiny, images, ["V1"], progress=False)
        assert tiny.training  # previous mode restored
        assert torch.equal(tiny.V1.norm1.running_mean, before)  # ran in eval mode: BN stats untouched
    finally:
        tiny.eval()


def test_extraction_stops_after_the_deepest_layer(tiny, images):
    calls = []
    handle = tiny.decoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        extract_features(tiny, images, ["V1", "V2"], batch_size=2, progress=False)  # 4 batches
    finally:
        handle.remove()
    assert len(calls) == 1  # only the first (probing) batch went through the whole network


def test_bad_inputs(tiny, images):
    with pytest.raises(LayerError, match="Did you mean"):
        extract_features(tiny, images, ["V5"], progress=False)
    with pytest.raises(DataError, match="ImageSet"):
        extract_features(tiny, [1, 2, 3], progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        extract_features(tiny, images, batch_size=0, progress=False)
    with pytest.raises(ConfigError, match="pooling"):
        extract_features(tiny, images, pooling="median", progress=False)
    with pytest.raises(ConfigError, match="dtype"):
        extract_features(tiny, images, dtype=torch.bfloat16, progress=False)
    with pytest.raises(LayerError):  # checked on the call, not on the first batch
        iter_features(tiny, images, ["V5"])


def test_a_batch_let_go_is_freed_before_the_next_forward_pass(images):
    """iter_features keeps no reference to the batch it yielded: a caller that drops it (as
    model_rdms does) has it freed before the next forward pass, not after it."""
    import weakref

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    refs, alive = [], []
    net.register_forward_pre_hook(lambda module, inputs: alive.append([r() is not None for r in refs]))
    for _, batch in iter_features(net, images[:6], ["0"], batch_size=2, progress=False):
        refs.append(weakref.ref(batch["0"]))
        del batch
    assert alive == [[], [False], [False, False]]
