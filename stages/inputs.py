"""Validated reading of the files one stage hands another: JSON documents and safetensors files.

Each problem becomes a :class:`stages.errors.DataError` naming the file and the field, so a broken
or mismatched input ends in one line instead of a ``KeyError`` or a library's traceback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.errors import DataError


def read_json(path: str | Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object with every key of ``required``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, None, "missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(path, None, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise DataError(path, None, f"expected a JSON object, got {type(doc).__name__}")
    for key in required:
        if key not in doc:
            raise DataError(path, key, "missing")
    return doc


def safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file, after checking that the file holds all their bytes.

    The format is an 8-byte little-endian header length, a JSON header giving each tensor's dtype,
    shape and byte range, then the data; a truncated download is shorter than the header says.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "missing")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise DataError(path, None, f"not a safetensors file or truncated ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(path, None, f"corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise DataError(path, None, "corrupt safetensors header")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    try:
        end = max((int(v["data_offsets"][1]) for v in tensors.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise DataError(path, None, "corrupt safetensors header (data_offsets)") from None
    if 8 + n + end != size:
        raise DataError(path, None, f"truncated or corrupt: {size} bytes, its header needs {8 + n + end}")
    return tensors


def load_tensor(path: str | Path, name: str):
    """One tensor of a checked safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if name not in safetensors_header(path):
        raise DataError(path, name, "no such tensor in the file")
    try:
        return load_file(str(path))[name]
    except SafetensorError as e:
        raise DataError(path, name, f"cannot read ({e})") from None
