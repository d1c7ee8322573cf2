#!/usr/bin/env bash
# The two GPU calls rehearsed on this CPU with tiny shapes, before a lease is spent on them: wheels,
# pack.py (on a synthetic tiny-random prompts artifact), check.sh and rows.sh with DRY_RUN=1, polars
# and prefect blocked at import as on the GPU image. Fails (non-zero) if any step does.
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
prompts.run(prompts.PromptsConfig(backbone="tiny-random"), {"dataset": dataset}, work / "prompts")
PYEOF
$PY benchmarks/gpu/pack.py --wheels .whl --data "synthetic:movie:$WORK/prompts:$WORK/embeddings" \
  --set backbone='"tiny-random"' --set max_steps=4 --set eval_every=2 --set checkpoint_every=2 \
  --set micro_batch=2 --set grad_accum=2
export DRY_RUN=1 PY OUT=$WORK/out PYTHONPATH=$WORK/block:$PWD
SMALL=random:tiny-llama LARGE=random:tiny-llama SMALL_MICRO=2,4 LARGE_MICRO=1,2 STEPS=3 EVAL_ROWS=8 \
  bash benchmarks/gpu/check.sh
bash benchmarks/gpu/rows.sh 600
tar xzf "$WORK/out/check.tgz" -C "$WORK"
cat "$WORK"/out/rows.tgz.part-* | tar xzf - -C "$WORK"
! grep -n "^exit \|Traceback" "$WORK/check/check.log" || { echo "dry run: check.sh failed"; exit 1; }
grep -q '"tokens_per_s"' "$WORK/check/finetune_large.json" && grep -q '"top"' "$WORK/check/finetune_small.json"
for row in "$WORK"/rows/*/; do ls "$row"; done
grep -c '"status": "ok"' "$WORK/rows/status.jsonl" | grep -qx "$($PY -c "import json;print(len(json.load(open('.dev/b/plan.json'))))")" \
  || { echo "dry run: a row did not finish"; cat "$WORK/rows/status.jsonl"; exit 1; }
echo "dry run passed: $(cat "$WORK/rows/status.jsonl" | wc -l) rows ok"
