"""LayerTap: collection, validation, hook removal, early stop, batch-first tokens."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from brainalign.errors import ConfigError, LayerError
from brainalign.models.registry import attach_spec
from brainalign.models.spec import BackboneSpec
from brainalign.taps import SEQ_FIRST_ATTR, LayerTap, resolve_layers, sequence_first_modules, validate_layers


class Counter(nn.Module):
    """Identity that counts its calls (to see which parts of a forward pass ran)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class TupleOut(nn.Module):
    def forward(self, x):
        return x * 2, "aux"


class First(nn.Module):
    def forward(self, pair):
        return pair[0]


def small_net() -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 4, 3, padding=1), act=nn.ReLU(), pair=TupleOut(), first=First(), late=Counter(),
        head=nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(4, 2))),
        tail=Counter()))


def n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_collects_each_layer_batch_first_and_tuple_outputs():
    model = small_net()
    x = torch.rand(2, 3, 8, 8)
    with LayerTap(model, ["conv", "pair", "head.fc"]) as tap:
        y = tap.run(x)
    assert tap.outputs["conv"].shape == (2, 4, 8, 8)
    assert torch.equal(tap.outputs["pair"], torch.relu(tap.outputs["conv"]) * 2)  # first tensor of the tuple
    assert torch.equal(tap.outputs["head.fc"], y)
    assert n_hooks(model) == 0


def test_detach_controls_the_autograd_graph():
    model = small_net()
    x = torch.rand(1, 3, 8, 8)
    with LayerTap(model, ["conv"]) as tap:
        model(x)
        assert tap.outputs["conv"].requires_grad
    with LayerTap(model, ["conv"], detach=True) as tap:
        model(x)
        assert not tap.outputs["conv"].requires_grad


def test_hooks_removed_after_an_exception():
    model = small_net()
    with pytest.raises(RuntimeError):
        with LayerTap(model, ["conv", "late"]):
            assert n_hooks(model) == 2
            model(torch.rand(1, 5, 8, 8))  # wrong channel count: conv fails
    assert n_hooks(model) == 0
    tap = LayerTap(model, ["conv"])
    with pytest.raises(RuntimeError):
        tap.run(torch.rand(1, 5, 8, 8))  # run() outside a with block cleans up too
    assert n_hooks(model) == 0


def test_unknown_layer_is_rejected_before_running_with_suggestions():
    model = small_net()
    with pytest.raises(LayerError, match=r"unknown layer 'head\.fx'.*Did you mean: head\.fc"):
        LayerTap(model, ["conv", "head.fx"])
    assert model.late.calls == 0 and n_hooks(model) == 0
    with pytest.raises(LayerError, match="no layers"):
        validate_layers(model, [])
    assert validate_layers(model, ["conv", "conv", "act"]) == ["conv", "act"]


def test_stop_after_last_skips_the_rest_of_the_network():
    model = small_net()
    x = torch.rand(2, 3, 8, 8)
    full = model(x)
    assert model.tail.calls == 1
    with LayerTap(model, ["late", "conv"], stop_after_last=True) as tap:
        first = tap.run(x)  # first run learns where the last requested layer fires
        assert torch.equal(first, full) and model.tail.calls == 2
        for _ in range(3):
            assert tap.run(x) is None
            assert set(tap.outputs) == {"late", "conv"}
        assert model.tail.calls == 2  # never reached again
        assert model(x).shape == (2, 2)  # a plain call inside the block is never aborted
    assert model.tail.calls == 3 and n_hooks(model) == 0


def test_stop_after_last_waits_for_the_final_step_of_a_recurrent_module():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.step = nn.Linear(3, 3)
            self.after = Counter()

        def forward(self, x):
            for _ in range(3):
                x = self.step(x)
            return self.after(x)

    torch.manual_seed(0)
    model = Loop()
    x = torch.rand(4, 3)
    with LayerTap(model, ["step"], stop_after_last=True) as tap:
        tap.run(x)
        expected = tap.outputs["step"].clone()
        tap.run(x)
        assert torch.equal(tap.outputs["step"], expected)  # third (last) step, not the first
    assert model.after.calls == 1


def test_resolve_layers_defaults_labels_and_models_without_spec():
    model = small_net()
    with pytest.raises(ConfigError, match=r"layers=\[\.\.\.\]"):
        resolve_layers(model)
    attach_spec(model, BackboneSpec(name="small", factory=lambda **k: small_net(), layers=("conv", "late"),
                                    layer_labels=("Early", "Late")))
    assert resolve_layers(model) == ["conv", "late"]
    assert resolve_layers(model, ["early", "LATE", "head.fc"]) == ["conv", "late", "head.fc"]
    assert resolve_layers(model, "Early") == ["conv"]
    with pytest.raises(LayerError, match="Did you mean: Early"):
        resolve_layers(model, ["Earli"])
    with LayerTap(model, None) as tap:
        tap.run(torch.rand(1, 3, 8, 8))
    assert set(tap.outputs) == {"conv", "late"}


def test_layers_that_never_run_are_reported():
    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    model = WithUnused()
    with LayerTap(model, ["unused"]) as tap, pytest.raises(LayerError, match="not called"):
        tap.run(torch.rand(1, 2))


def test_sequence_first_transformers_give_batch_first_tokens():
    from open_clip.transformer import Transformer

    torch.manual_seed(0)
    seq_first = Transformer(width=8, layers=2, heads=2, batch_first=False)
    batch_first = Transformer(width=8, layers=2, heads=2, batch_first=True)
    batch_first.load_state_dict(seq_first.state_dict())
    assert "resblocks.1" in sequence_first_modules(seq_first)
    assert not sequence_first_modules(batch_first)
    x = torch.rand(3, 5, 8)  # (N, L, D): both versions take batch-first input
    outs = {}
    for name, model in (("seq", seq_first), ("batch", batch_first)):
        with LayerTap(model.eval(), ["resblocks.0", "resblocks.1.mlp"]) as tap:
            tap.run(x)
        outs[name] = tap.outputs
        assert tap.outputs["resblocks.0"].shape == (3, 5, 8)
        assert tap.outputs["resblocks.1.mlp"].shape == (3, 5, 8)
    assert torch.allclose(outs["seq"]["resblocks.0"], outs["batch"]["resblocks.0"], atol=1e-6)


def test_explicit_sequence_first_marker():
    class SeqFirst(nn.Module):
        def forward(self, x):  # (N, L, D) in, (L, N, D) out
            return x.transpose(0, 1)

    model = nn.Sequential(OrderedDict(enc=SeqFirst()))
    setattr(model.enc, SEQ_FIRST_ATTR, True)
    with LayerTap(model, ["enc"]) as tap:
        tap.run(torch.rand(2, 7, 4))
    assert tap.outputs["enc"].shape == (2, 7, 4)
