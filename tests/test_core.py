"""The shared core: errors, device choice, images, the NeuralDataset model, preprocessing, CLI dispatch."""
import numpy as np
import pytest
import torch

from brainalign.cli import main
from brainalign.data import ImageSet, NeuralDataset
from brainalign.device import resolve_device
from brainalign.errors import ConfigError, DataError, suggest
from brainalign.models.spec import Preprocessing


def _ds(n=6, reps=3, ch=2, t=4, **kw):
    rng = np.random.default_rng(0)
    reps_arr = rng.normal(size=(n, reps, ch, t)).astype(np.float32)
    return NeuralDataset(images=rng.random((n, 3, 8, 8)).astype(np.float32), responses=reps_arr.mean(1),
                         repetitions=reps_arr, modality="eeg", **kw)


def test_suggest_finds_close_names():
    assert "cornet" in suggest("cornt", ["cornet", "resnet101", "clip"])
    assert suggest("zzz", ["cornet"]) == ""


def test_resolve_device_auto_and_errors():
    assert resolve_device(None).type in ("cpu", "cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_imageset_from_array_accepts_channels_last_and_uint8():
    arr = (np.arange(2 * 4 * 4 * 3) % 256).astype(np.uint8).reshape(2, 4, 4, 3)
    imgs = ImageSet.from_array(arr)
    out = imgs.load([1])
    assert out.shape == (1, 3, 4, 4) and out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0] * 255, torch.tensor(arr[1, 0, 0], dtype=torch.float32))


def test_imageset_from_paths_reads_and_resizes(tmp_path):
    from PIL import Image

    p = tmp_path / "a.png"
    Image.fromarray(np.full((10, 12, 3), 255, np.uint8)).save(p)
    out = ImageSet.from_paths([p], size=16).load([0])
    assert out.shape == (1, 3, 16, 16) and torch.allclose(out, torch.ones_like(out))
    with pytest.raises(DataError, match="image file not found"):
        ImageSet.from_paths([tmp_path / "missing.png"])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image"):
        ImageSet.from_paths([bad]).load([0])


def test_dataset_targets_trials_and_concept_split():
    ds = _ds(n=10, concepts=np.repeat(list("abcde"), 2), channel_names=["O1", "Oz"], times=np.arange(4) / 100)
    assert ds.targets().shape == (10, 8) and ds.n_targets == 8
    assert ds.trials().shape == (10, 3, 2, 4)
    rest, held = ds.split_by_concept(0.4, seed=1)
    assert len(rest) + len(held) == 10
    assert not set(rest.concepts) & set(held.concepts)
    again_rest, again_held = ds.split_by_concept(0.4, seed=1)
    assert list(again_held.concepts) == list(held.concepts)
    np.testing.assert_array_equal(held.responses, ds.responses[np.isin(ds.concepts, held.concepts)])


@pytest.mark.parametrize("kwargs, match", [
    (dict(responses=np.zeros((5, 4))), "image count"),
    (dict(responses=np.array([[np.nan, 1.0]] * 6)), "NaN/Inf"),
    (dict(responses=np.zeros((6, 2, 4)), channel_names=["O1"]), "channel names"),
    (dict(responses=np.zeros((6, 2, 4)), times=[0.0]), "time points"),
    (dict(responses=np.zeros((6, 4)), concepts=["a"]), "one label per image"),
    (dict(responses=np.zeros((6, 4)), modality=""), "modality"),
])
def test_dataset_rejects_inconsistent_input(kwargs, match):
    images = np.zeros((6, 3, 4, 4), np.float32)
    with pytest.raises(DataError, match=match):
        NeuralDataset(images=images, **kwargs)


def test_dataset_without_repetitions_explains_how_to_get_trials():
    ds = NeuralDataset(images=np.zeros((3, 3, 4, 4)), responses=np.ones((3, 2)))
    with pytest.raises(DataError, match="average_repetitions=False"):
        ds.trials()


def test_preprocessing_resizes_and_normalises():
    pre = Preprocessing(size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = pre(torch.ones(2, 3, 4, 4))
    assert out.shape == (2, 3, 8, 8) and torch.allclose(out, torch.ones_like(out))
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def test_cli_bad_arguments_are_one_line_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("brainalign: error:")


@pytest.mark.parametrize("scale, shift", [(255.0, 0.0), (1.0, -0.5)])
def test_imageset_refuses_float_images_outside_unit_range(scale, shift):
    with pytest.raises(DataError, match=r"must be in \[0, 1\]"):
        ImageSet.from_array(np.random.default_rng(0).random((2, 3, 4, 4)) * scale + shift)
