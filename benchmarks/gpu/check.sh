#!/usr/bin/env bash
# Third call on the lent GPU machine, after setup.sh and rows.sh on the same warm machine (carries
# nothing), only if at least 4 minutes of the lease remain: the GPU speed targets, measured on random
# weights with the real shapes:
#   1. SmolLM2-135M LoRA training, ours vs a plain transformers.Trainer, bf16, by micro-batch, and
#      the top kernels of ours at its fastest micro-batch;
#   2. candidate scoring and generation rows/s;
#   3. Llama-2-7B LoRA training with gradient checkpointing: tokens/s, MFU by 4N, peak memory by
#      micro-batch (the smallest is the configuration to set beside 24 GB).
# Everything lands in $OUT/check.tgz; the figures are printed too.
#
# A CPU dry run of the same commands (DRY_RUN=1): tiny shapes, a few steps, on this machine's stack
# with polars and prefect blocked as on the image, in the CPU's native precision (PRECISION=fp32
# where bf16 would be emulated: a 4096² bf16 GEMM alone takes minutes there; benchmarks/gpu/dry_run.sh).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
SMALL=${SMALL:-random:smollm2-135m}
LARGE=${LARGE:-random:llama-2-7b}
SMALL_MICRO=${SMALL_MICRO:-16,32,64}
LARGE_MICRO=${LARGE_MICRO:-1,4,16}
STEPS=${STEPS:-8}
EVAL_ROWS=${EVAL_ROWS:-512}
PRECISION=${PRECISION:-bf16}
mkdir -p "$OUT/check"
log=$OUT/check/check.log
run() { echo "+ $*" | tee -a "$log"; "$@" >> "$log" 2>&1 || echo "exit $? from: $*" | tee -a "$log"; }
if [ -z "${DRY_RUN:-}" ]; then
  [ -d /tmp/site ] && [ -d /tmp/backbones ] || { echo "setup.sh's files are gone: the machine went cold"; exit 3; }
  export PYTHONPATH=/tmp/site:$PWD
fi
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 LLARA_BACKBONE_CACHE=/tmp/backbones

start=$(date +%s)
run $PY benchmarks/bench_finetune.py --backbone "$SMALL" --precision "$PRECISION" --effective-batch 128 \
  --micro-batches "$SMALL_MICRO" --steps "$STEPS" --profile-steps 4 --json-out "$OUT/check/finetune_small.json"
run $PY benchmarks/bench_eval.py --backbone "$SMALL" --rows "$EVAL_ROWS" --batch-size 64 --precision "$PRECISION" \
  --scorers masked
run $PY benchmarks/bench_finetune.py --backbone "$LARGE" --precision "$PRECISION" --sides ours --effective-batch 32 \
  --micro-batches "$LARGE_MICRO" --gradient-checkpointing --steps 3 --json-out "$OUT/check/finetune_large.json"
echo "check took $(( $(date +%s) - start ))s" | tee -a "$log"
grep -E "^(ours|hf_|GEMM|[ 0-9.]+%)|tok/s|rows/s|^\{|exit " "$log" | cut -c1-400 | head -60
tar czf "$OUT/check.tgz" -C "$OUT" check && rm -rf "$OUT/check"
