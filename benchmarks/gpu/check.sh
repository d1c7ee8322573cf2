#!/usr/bin/env bash
# First call on the lent GPU machine (carry .dev/a, see pack.py): install the carried wheels, keep
# GGUF part 1 for rows.sh, then measure on random weights with the real shapes (the GPU speed targets):
#   1. SmolLM2-135M LoRA training, ours vs a plain transformers.Trainer, bf16, by micro-batch, and
#      the top kernels of ours at its fastest micro-batch;
#   2. candidate scoring and generation rows/s;
#   3. Llama-2-7B LoRA training with gradient checkpointing: tokens/s, MFU by 4N, peak memory by
#      micro-batch (the smallest is the configuration to set beside 24 GB).
# Everything lands in $OUT/check.tgz; the figures are printed too.
#
# A CPU dry run of the same commands (DRY_RUN=1): tiny shapes, a few steps, the wheels unpacked for
# Python 3.12 but not imported, polars and prefect blocked as on the image (benchmarks/gpu/dry_run.sh).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
SMALL=${SMALL:-random:smollm2-135m}
LARGE=${LARGE:-random:llama-2-7b}
SMALL_MICRO=${SMALL_MICRO:-16,32,64}
LARGE_MICRO=${LARGE_MICRO:-1,4,16}
STEPS=${STEPS:-8}
EVAL_ROWS=${EVAL_ROWS:-512}
mkdir -p "$OUT/check"
log=$OUT/check/check.log
run() { echo "+ $*" | tee -a "$log"; "$@" >> "$log" 2>&1 || echo "exit $? from: $*" | tee -a "$log"; }

start=$(date +%s)
if [ -n "${DRY_RUN:-}" ]; then  # unpack for the image's Python to check the set; run on this one
  run $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site-dry \
    --python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux2014_x86_64 \
    .dev/a/wheels/*.whl
else
  run $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .dev/a/wheels/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 LLARA_BACKBONE_CACHE=/tmp/backbones
mkdir -p /tmp/backbones && cp -r .dev/a/backbones/. /tmp/backbones/
cp .dev/a/gguf.part1 /tmp/smollm2.gguf.part1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  $PY -c "import torch, transformers, peft, deepspeed, gguf; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'peft', peft.__version__, 'deepspeed', deepspeed.__version__)"
} 2>&1 | tee "$OUT/check/versions.txt"

run $PY benchmarks/bench_finetune.py --backbone "$SMALL" --precision bf16 --effective-batch 128 \
  --micro-batches "$SMALL_MICRO" --steps "$STEPS" --profile-steps 4 --json-out "$OUT/check/finetune_small.json"
run $PY benchmarks/bench_eval.py --backbone "$SMALL" --rows "$EVAL_ROWS" --batch-size 64 --precision bf16 \
  --scorers masked
run $PY benchmarks/bench_finetune.py --backbone "$LARGE" --precision bf16 --sides ours --effective-batch 32 \
  --micro-batches "$LARGE_MICRO" --gradient-checkpointing --steps 3 --json-out "$OUT/check/finetune_large.json"
echo "check took $(( $(date +%s) - start ))s" | tee -a "$log"
grep -E "^(ours|hf_|GEMM|[ 0-9.]+%)|tok/s|rows/s|^\{|exit " "$log" | cut -c1-400 | head -60
tar czf "$OUT/check.tgz" -C "$OUT" check && rm -rf "$OUT/check"
