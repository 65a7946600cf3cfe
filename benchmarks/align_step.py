"""Step time and peak memory of one alignment step on CORnet-S, side by side.

Variants (same backbone, batch, images and loss terms):
  ours       one backbone pass with layer taps feeds logits + head; cached teacher labels
  reference  the published design: a frozen teacher forward every step, the student
             forward for the logits, and a second backbone pass stage by stage for the head
  plain      plain fine-tuning: forward + cross-entropy + backward + Adam, no head

Steps are interleaved round-robin (ours, reference, plain, ours, ...) so that load changes
on a shared machine hit all variants alike; the median step time is reported.
Memory, per variant and device-independent: activations saved for backward in one step
(autograd saved-tensor hooks, unique storages, parameters excluded) + persistent state
(parameters, gradients, Adam moments, and the reference's frozen teacher copy). On CUDA the
allocator's peak (max_memory_allocated, reset per variant) is printed too.

    python benchmarks/align_step.py                 # CPU, 224 px, batch 16, 2 timed steps
    python benchmarks/align_step.py --device cuda --steps 20

--loop times the whole training loop instead (brainalign.align on image files through the
decoded-image cache, held on the device), once per step variant: plain fp32, bf16,
bf16+channels_last, bf16+channels_last+compile. It reports images/s of the second (warm)
epoch and projects the paper's grid (40 runs x 30 epochs x 16,540 images) on one device:

    python benchmarks/align_step.py --loop --device cuda --images 2048 --batch-size 64
    python benchmarks/align_step.py --loop --images 32 --size 64 --variants plain,bf16   # CPU check
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from brainalign.alignment.head import EncoderHead, probe_layer_shapes
from brainalign.alignment.losses import contrastive_loss
from brainalign.alignment.trainer import AlignModule
from brainalign.device import resolve_device
from brainalign.models.registry import load_backbone

LAYERS = ["V1", "V2", "V4", "IT"]


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _reset_peak(dev):
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_mb(dev) -> float:
    return torch.cuda.max_memory_allocated(dev) / 2**20


def build(dev, size, n_targets, seed=0):
    torch.manual_seed(seed)
    model = load_backbone("cornet", pretrained=False, device=dev)
    shapes = probe_layer_shapes(model, LAYERS, size, dev)
    return model, shapes


def make_variants(dev, size, batch, n_targets, beta):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g).to(dev)
    y = torch.randn(batch, n_targets, generator=g).to(dev)
    labels = torch.randint(0, 1000, (batch,), generator=g).to(dev)

    # ours: one pass, taps -> head, cached teacher labels
    m1, shapes = build(dev, size, n_targets)
    head1 = EncoderHead(shapes, n_targets).to(dev)
    mod = AlignModule(m1, head1, LAYERS).train()
    opt1 = torch.optim.Adam(list(m1.parameters()) + list(head1.parameters()), lr=2e-5)

    def ours():
        out, pred = mod(x)
        loss = F.cross_entropy(out, labels) + beta * (F.mse_loss(pred, y) + contrastive_loss(y, pred))
        opt1.zero_grad(set_to_none=True)
        loss.backward()
        opt1.step()

    # reference: teacher every step + logits pass + a second stage-by-stage pass for the head
    m2, _ = build(dev, size, n_targets)
    teacher = copy.deepcopy(m2).eval().requires_grad_(False)
    head2 = EncoderHead(shapes, n_targets).to(dev)
    m2.train()
    opt2 = torch.optim.Adam(list(m2.parameters()) + list(head2.parameters()), lr=2e-5)

    def reference():
        with torch.no_grad():
            t_labels = teacher(x).argmax(-1)
        out = m2(x)
        v1 = m2.V1(x)
        v2 = m2.V2(v1)
        v4 = m2.V4(v2)
        it = m2.IT(v4)
        pred = head2({"V1": v1, "V2": v2, "V4": v4, "IT": it})
        loss = F.cross_entropy(out, t_labels) + beta * (F.mse_loss(pred, y) + contrastive_loss(y, pred))
        opt2.zero_grad(set_to_none=True)
        loss.backward()
        opt2.step()

    # plain fine-tuning of the backbone alone
    m3, _ = build(dev, size, n_targets)
    m3.train()
    opt3 = torch.optim.Adam(m3.parameters(), lr=2e-5)

    def plain():
        loss = F.cross_entropy(m3(x), labels)
        opt3.zero_grad(set_to_none=True)
        loss.backward()
        opt3.step()

    state = {"ours": ([opt1], []), "reference": ([opt2], [teacher]), "plain": ([opt3], [])}
    return {"ours": ours, "reference": reference, "plain": plain}, state


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def saved_activation_mb(fn, exclude: set[int]) -> float:
    """Run ``fn`` once; MiB of the unique storages autograd saved for backward (params excluded)."""
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in exclude:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values()) / 2**20


def state_mb(optimizers, frozen) -> float:
    """Parameters + gradients + optimiser state + frozen copies, in MiB."""
    total = 0
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                total += _nbytes(p) + (_nbytes(p.grad) if p.grad is not None else 0)
                total += sum(_nbytes(v) for v in opt.state.get(p, {}).values() if isinstance(v, torch.Tensor))
    for m in frozen:
        total += sum(_nbytes(p) for p in m.parameters())
    return total / 2**20


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per variant (default 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per variant first (default 1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--n-targets", type=int, default=340, help="17 channels x 20 time points")
    p.add_argument("--beta", type=float, default=100.0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--loop", action="store_true", help="time the full align() loop per step variant (see above)")
    p.add_argument("--images", type=int, default=256, help="--loop: training images (default 256)")
    p.add_argument("--variants", default=",".join(LOOP_VARIANTS), help="--loop: comma-separated subset of "
                   + ", ".join(LOOP_VARIANTS))
    p.add_argument("--backbone", default="cornet", help="--loop: backbone (default cornet = CORnet-S)")
    p.add_argument("--images-dir", default=None, help="--loop: folder for the JPEGs (default: a temp folder)")
    p.add_argument("--json", default=None, help="--loop: also write the figures here (paper_scale.py reads "
                   "benchmarks/gpu_check.json for its GPU projection)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.loop:
        return loop_main(a)
    dev = resolve_device(a.device)
    variants, state = make_variants(dev, a.size, a.batch_size, a.n_targets, a.beta)
    times = {k: [] for k in variants}
    peaks, acts, states = {}, {}, {}
    for name, fn in variants.items():  # warm-up, and each variant's own memory
        opts, frozen = state[name]
        params = {p.untyped_storage().data_ptr() for o in opts for g in o.param_groups for p in g["params"]}
        params |= {p.untyped_storage().data_ptr() for m in frozen for p in m.parameters()}
        _reset_peak(dev)
        acts[name] = saved_activation_mb(fn, params)
        for _ in range(a.warmup - 1):
            fn()
        _sync(dev)
        peaks[name] = _peak_mb(dev) if dev.type == "cuda" else None
        states[name] = state_mb(opts, frozen)
    for _ in range(a.steps):
        for name, fn in variants.items():
            _sync(dev)
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"CORnet-S, {a.size} px, batch {a.batch_size}, {a.n_targets} targets, device {dev}, "
          f"{torch.get_num_threads()} threads, {a.steps} timed steps (median)")
    for k in variants:
        cuda = f", CUDA peak {peaks[k]:.0f} MiB" if peaks[k] is not None else ""
        print(f"  {k:<10} {med[k] * 1000:9.1f} ms/step   memory: activations {acts[k]:.0f} MiB + "
              f"state {states[k]:.0f} MiB = {acts[k] + states[k]:.0f} MiB{cuda}")
    print(f"  speed-up over the reference design: {med['reference'] / med['ours']:.2f}x  (target >= 2x)")
    print(f"  overhead over plain fine-tuning:    {100 * (med['ours'] / med['plain'] - 1):+.1f} %  (target <= 15 %)")
    return med


LOOP_VARIANTS = {"plain": {}, "bf16": {"amp": "bf16"}, "bf16+cl": {"amp": "bf16", "channels_last": True},
                 "bf16+cl+compile": {"amp": "bf16", "channels_last": True, "compile": True}}
PAPER_GRID_IMAGE_EPOCHS = 40 * 30 * 16540  # 40 runs x 30 epochs x 16,540 training images


def loop_main(a) -> dict:
    """images/s of align()'s training loop per variant, with the image cache on the device."""
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    import brainalign
    from brainalign.data.image_cache import build_image_cache
    from brainalign.data.images import ImageSet

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_image_cache import make_jpegs

    dev = resolve_device(a.device)
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in LOOP_VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}: choose from {', '.join(LOOP_VARIANTS)}")
    tmp = Path(tempfile.mkdtemp(prefix="brainalign-loop-"))
    folder = Path(a.images_dir) if a.images_dir else tmp / "jpegs"
    paths = make_jpegs(folder, a.images, 500)
    t0 = time.perf_counter()
    images = build_image_cache(ImageSet.from_paths(paths, size=a.size), folder=tmp / "cache", progress=False)
    build_s = time.perf_counter() - t0
    responses = np.random.default_rng(0).standard_normal((a.images, a.n_targets)).astype(np.float32)
    model = brainalign.load_backbone(a.backbone, pretrained=False, device="cpu")
    print(f"{a.backbone}, {a.images} images at {a.size} px (cache built in {build_s:.1f} s, held on {dev}), "
          f"batch {a.batch_size}, {a.n_targets} targets, beta {a.beta}, {torch.get_num_threads()} threads")
    rates = {}
    for name in names:
        _sync(dev)
        t0 = time.perf_counter()
        res = brainalign.align(model, data=(images, responses), epochs=2, batch_size=a.batch_size, beta=a.beta,
                               lr=2e-5, val_fraction=0, device=dev, images_on_device=True, progress=False,
                               seed=0, **LOOP_VARIANTS[name])
        wall = time.perf_counter() - t0
        first, warm = res.history[0]["time_s"], res.history[1]["time_s"]
        rates[name] = a.images / warm
        hours = PAPER_GRID_IMAGE_EPOCHS / rates[name] / 3600
        peak = f", CUDA peak {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} MiB" if dev.type == "cuda" else ""
        print(f"  {name:<16} {rates[name]:8.1f} images/s (epoch 1 {first:.1f} s incl. warm-up, epoch 2 {warm:.1f} s; "
              f"call {wall:.1f} s{peak}); paper grid on one device: {hours:.1f} h")
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
    best = max(rates, key=rates.get)
    print(f"  fastest: {best}, {rates[best] / rates.get('plain', rates[best]):.2f}x plain; paper grid "
          f"(40 runs x 30 epochs x 16,540 images, training only): {PAPER_GRID_IMAGE_EPOCHS / rates[best] / 3600:.1f} h "
          f"on one device, {PAPER_GRID_IMAGE_EPOCHS / rates[best] / 3600 / 8:.1f} h on 8")
    if a.json:
        import json

        gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
        Path(a.json).write_text(json.dumps({
            "device": gpu, "backbone": a.backbone, "size": a.size, "batch_size": a.batch_size, "images": a.images,
            "variant": best, "images_per_s": rates[best], "rates": rates,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1) + "\n")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return rates


if __name__ == "__main__":
    main()
