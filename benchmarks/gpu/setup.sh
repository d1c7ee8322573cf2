#!/usr/bin/env bash
# First call on the lent GPU machine (carry .dev/a, see pack.py): install the carried wheels into
# /tmp/site, put the random: backbones' caches in /tmp/backbones, keep GGUF part 1 for rows.sh, and
# print the GPU and the versions. It takes well under a minute, so that the lease's minutes go to
# rows.sh, the second call, which must follow within the machine's warm window (30 s) or these
# files are gone with it.
#
# A CPU dry run (DRY_RUN=1): the wheels are unpacked for the image's Python 3.12 to check the set,
# and the versions are this venv's (benchmarks/gpu/dry_run.sh).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
mkdir -p "$OUT"
start=$(date +%s)
if [ -n "${DRY_RUN:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site-dry \
    --python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux2014_x86_64 \
    .dev/a/wheels/*.whl || { echo "setup: the wheels do not install for Python 3.12"; exit 2; }
else
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .dev/a/wheels/*.whl || { echo "setup: the wheels did not install"; exit 2; }
  export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p /tmp/backbones && cp -r .dev/a/backbones/. /tmp/backbones/
cp .dev/a/gguf.part1 /tmp/smollm2.gguf.part1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  $PY -c "import torch, transformers, peft, deepspeed, gguf; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'peft', peft.__version__, 'deepspeed', deepspeed.__version__)"
} 2>&1 | tee "$OUT/versions.txt"
grep -q "^torch " "$OUT/versions.txt" || { echo "setup: the stack does not import"; exit 3; }
echo "setup took $(( $(date +%s) - start ))s"
