#!/usr/bin/env bash
# First call on the lent GPU machine (see pack.py): install the carried wheels, keep GGUF part 1 for
# the second call, and measure fine-tuning throughput / MFU on a random SmolLM2-135M-shaped model.
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .dev/a/wheels/*.whl
export PYTHONPATH=/tmp/site:$PWD TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
cp .dev/a/gguf.part1 /tmp/smollm2.gguf.part1
rm -rf /tmp/llara-data && cp -r .dev/a/data /tmp/llara-data
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, peft, deepspeed, pyarrow, gguf; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'deepspeed', deepspeed.__version__, 'pyarrow', pyarrow.__version__)" | tee -a "$OUT/gpu.txt"
python3 benchmarks/gpu/random_backbone.py .dev/a/smollm2-config.json /tmp/smol-random
for mb in 8 32; do
  python3 benchmarks/bench_finetune.py --backbone hf:/tmp/smol-random --micro-batch $mb --steps 30 \
    --json-out "$OUT/bench_mb$mb.json" > "$OUT/bench_mb$mb.log" 2>&1 || tail -30 "$OUT/bench_mb$mb.log"
  tail -25 "$OUT/bench_mb$mb.log"
done
