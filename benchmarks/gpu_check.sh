#!/usr/bin/env bash
# One prepared check for a CUDA machine (< 8 min on one GPU). From the repository root:
#     bash benchmarks/gpu_check.sh [OUT_DIR]
# 1. the alignment step side by side (ours / reference design / plain fine-tuning) on CUDA;
# 2. the full align() loop with the decoded-image cache held on the device, per step variant
#    (plain, bf16, bf16+channels_last, +torch.compile): images/s and the projected wall time of
#    the paper's 40-run grid;
# 3. a 2-process torchrun DDP smoke test (NCCL; on a single GPU, where NCCL refuses two ranks
#    on one device, it falls back to gloo over the shared GPU and says so).
# Each part has its own time limit; a failing part is reported and the next one still runs.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-$(mktemp -d /tmp/brainalign-gpu-check.XXXXXX)}
mkdir -p "$OUT"
status=0
part() {  # part NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit} s) ==="
  local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - t0)) s ==="
  [ $rc -eq 0 ] || status=1
  return $rc
}
# brainalign and its first-party plugins (entry points) must be importable: install offline if not
if ! python -c "from brainalign.models.registry import get_backbone_spec; get_backbone_spec('cornet')" 2>/dev/null; then
  echo "installing brainalign from this checkout (pip install --no-deps --no-build-isolation -e .)"
  pip install -q --no-deps --no-build-isolation -e . || { echo "gpu_check: cannot install brainalign"; exit 2; }
fi
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here: nothing to check (the CPU parts: see benchmarks/README.md)"
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi not found"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'devices', torch.cuda.device_count(), 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())"

part "align step (ours / reference / plain)" 90 \
  python benchmarks/align_step.py --device cuda --steps 20 --warmup 3 --batch-size 16
part "align loop, cache on the device" 300 \
  python benchmarks/align_step.py --loop --device cuda --images 2048 --batch-size 64 --json "$OUT/gpu_check.json" \
  && cp "$OUT/gpu_check.json" benchmarks/gpu_check.json && echo "wrote benchmarks/gpu_check.json (paper_scale.py projects the grid from it)"

n_gpu=$(python -c "import torch; print(torch.cuda.device_count())")
DDP="rm -rf '$OUT/ddp' && torchrun --standalone --nproc_per_node=2 benchmarks/ddp_smoke.py '$OUT/ddp' --device cuda && python benchmarks/ddp_smoke.py '$OUT/ddp' --check"
if [ "$n_gpu" -ge 2 ]; then
  part "torchrun 2 processes, NCCL, 2 GPUs" 120 bash -c "$DDP"
else
  before=$status
  if ! part "torchrun 2 processes, NCCL, one shared GPU" 90 bash -c "$DDP"; then
    echo "(NCCL refuses two ranks on one GPU; trying gloo over the shared GPU)"
    BRAINALIGN_DIST_BACKEND=gloo part "torchrun 2 processes, gloo, one shared GPU" 90 bash -c "$DDP" && status=$before
  fi
fi
echo "gpu_check: overall exit $status (output in $OUT)"
exit $status
