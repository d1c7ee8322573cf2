#!/usr/bin/env bash
# The GPU calls rehearsed on this CPU with tiny shapes, before a lease is spent on them: wheels,
# pack.py (the cpu profile's plan on a synthetic tiny-random token-first prompts artifact), then
# setup.sh, rows.sh and check.sh in the order of the lease with DRY_RUN=1, polars and prefect blocked
# at import as on the GPU image. Fails (non-zero) if any step does.
#
#     bash benchmarks/gpu/dry_run.sh            # from the repository root, the venv in .venv
set -euo pipefail
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/llara-gpu-dry}
rm -rf "$WORK" && mkdir -p "$WORK/block"
[ -d .whl ] || bash benchmarks/gpu/wheels.sh
cat > "$WORK/block/sitecustomize.py" <<'PYEOF'
import importlib.abc, sys
class _NotOnTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"polars", "prefect"}:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU image)")
        return None
sys.meta_path.insert(0, _NotOnTheImage())
PYEOF
$PY - "$WORK" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from bench_finetune import synthetic_inputs
from stages.llm import prompts
work = Path(sys.argv[1])
dataset, embeddings = synthetic_inputs(work)
(work / "prompts").mkdir()
config = prompts.PromptsConfig(backbone="tiny-random", item_order="token-first")
prompts.run(config, {"dataset": dataset}, work / "prompts")
PYEOF
$PY benchmarks/gpu/pack.py --wheels .whl --data "synthetic:movie:$WORK/prompts:$WORK/embeddings" \
  --set backbone='"tiny-random"' --set max_steps=4 --set eval_every=2 --set checkpoint_every=2 \
  --set micro_batch=2 --set grad_accum=2
export DRY_RUN=1 PY OUT=$WORK/out PYTHONPATH=$WORK/block:$PWD
bash benchmarks/gpu/setup.sh
bash benchmarks/gpu/rows.sh 600
PRECISION=$($PY -c "from stages.precision import native_precisions; print(native_precisions()[-1])")
SMALL=random:tiny-llama LARGE=random:tiny-llama SMALL_MICRO=2,4 LARGE_MICRO=1,2 STEPS=3 EVAL_ROWS=8 \
  PRECISION=$PRECISION bash benchmarks/gpu/check.sh
grep -q "^torch " "$WORK/out/versions.txt"
tar xzf "$WORK/out/check.tgz" -C "$WORK"
cat "$WORK"/out/rows.tgz.part-* | tar xzf - -C "$WORK"
! grep -n "^exit \|Traceback" "$WORK/check/check.log" || { echo "dry run: check.sh failed"; exit 1; }
grep -q '"tokens_per_s"' "$WORK/check/finetune_large.json" && grep -q '"top"' "$WORK/check/finetune_small.json"
for row in "$WORK"/rows/*/; do ls "$row"; done
grep -h '"row"' "$WORK"/rows/*/row.json | sort -u
grep -c '"status": "ok"' "$WORK/rows/status.jsonl" | grep -qx "$($PY -c "import json;print(len(json.load(open('.dev/b/plan.json'))))")" \
  || { echo "dry run: a row did not finish"; cat "$WORK/rows/status.jsonl"; exit 1; }
# A later lease over the rows brought back: finished rows are not trained again, and a row the
# budget stopped (here: a finished row's copy without its row.json) brings back only the
# checkpoints its resume reads.
! grep -q "/checkpoints/" <(tar tzf <(cat "$WORK"/out/rows.tgz.part-*)) || { echo "dry run: a finished row brought checkpoints"; exit 1; }
first=$(basename "$(ls -d .dev/b/rows/*/ | head -1)")
cp -r ".dev/b/rows/$first" .dev/b/rows/stopped && rm .dev/b/rows/stopped/row.json
OUT=$WORK/out2 bash benchmarks/gpu/rows.sh 600
tail -n 2 .dev/b/rows/status.jsonl | grep -c '"done earlier' | grep -qx 2 || { echo "dry run: a finished row ran again"; exit 1; }
tar tzf <(cat "$WORK"/out2/rows.tgz.part-*) | grep "/checkpoints/" | sort > "$WORK/stopped.list"
cat "$WORK/stopped.list"
latest=$(cat .dev/b/rows/stopped/checkpoints/latest)
grep -q "stopped/checkpoints/$latest/mp_rank_00_model_states.pt" "$WORK/stopped.list" \
  && grep -q "stopped/checkpoints/best-step-" "$WORK/stopped.list" \
  && [ "$(grep -c "step-[0-9]*/" "$WORK/stopped.list")" = "$(ls ".dev/b/rows/stopped/checkpoints/$latest" | wc -l)" ] \
  && ! grep -q "$first/checkpoints" "$WORK/stopped.list" || { echo "dry run: wrong checkpoints came back"; exit 1; }
echo "dry run passed: $(grep -c '"status": "ok"' "$WORK/rows/status.jsonl") rows ok, then skipped as done"
