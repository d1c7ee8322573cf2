#!/usr/bin/env bash
# The wheels the lent GPU machine lacks, for its Python 3.12, into .whl/ (git-ignored): what the
# fine-tuning and evaluation stages import beyond its image (DeepSpeed and its pydantic/hjson, gguf),
# and our pinned transformers and peft, which its image holds at other versions. The image's own
# torch (2.11; ours 2.13, too large to carry), tokenizers 0.23.2, safetensors 0.8.0 and
# huggingface_hub 1.33 satisfy what these need (our hub 2.x would need httpx2 and a newer click).
#
#     bash benchmarks/gpu/wheels.sh            # then: python benchmarks/gpu/pack.py --wheels .whl ...
set -euo pipefail
OUT=${1:-.whl}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
version() { "$PY" -c "from importlib.metadata import version; print(version('$1'))"; }
pins=()
for name in transformers peft hjson pydantic pydantic_core \
    annotated-types typing-inspection typing_extensions gguf; do
  pins+=("$name==$(version "$name")")
done
platforms=()
for n in 2_28 2_27 2_17 2_5; do platforms+=(--platform "manylinux_${n}_x86_64"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 -d "$OUT" "${pins[@]}"
# DeepSpeed is published as a source archive only; its wheel is pure Python (ops are built at run time)
"$PY" -m pip wheel -q --no-deps -w "$OUT" "deepspeed==$(version deepspeed)"
ls -l "$OUT"
du -sh "$OUT"
