"""Read a ``torch.save`` zip that holds a whole pickled module, without running its pickle's code.

The LLaRA authors released their SASRec checkpoints as pickled modules (class ``__main__.SASRec``).
``torch.load`` would import the classes and call whatever the pickle names; ``weights_only=True``
refuses these files because of the custom classes. :func:`read_checkpoint` instead:

- resolves only a short allowlist of globals, each to our OWN safe replacement: tensor and
  parameter rebuilding, storage types (which only name a dtype), ``OrderedDict``/``set``, the
  ``torch.device`` of the saved tensors, and the numpy scalar encoding pickles use for plain numbers;
- turns every other global into an inert :class:`Record` type that nothing imports: creating one
  (``NEWOBJ``) only records its state (``BUILD``), and calling it (``REDUCE``, i.e. a
  ``__reduce__`` that calls a function) raises :class:`UnsafePickle`, so no named code ever runs.

The result is a tree of records whose tensors :func:`named_tensors` flattens to the
``state_dict``-style names (``mh_attn.linear_q.weight``...).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stages.errors import DataError

# The storage types a pickle names in its persistent ids; each only stands for a dtype.
STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
NUMPY_SCALARS = ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "b1", "?")


class UnsafePickle(Exception):
    """The pickle asks to call something outside the allowlist; nothing it names has run."""


class Record:
    """An inert stand-in for an object of a class we do not import: its class name and state."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only reached when the pickle CALLS the global (REDUCE); NEWOBJ uses __new__ alone.
        raise UnsafePickle(f"the pickle calls {self.qualname}{args!r:.60}; refused (nothing was run)")

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"Record({self.qualname})"


def _record_type(module: str, name: str) -> type[Record]:
    return type(name, (Record,), {"qualname": f"{module}.{name}", "__module__": "stages.seqrec.checkpoint"})


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


class _Dtype:
    """numpy's ``dtype`` as pickled (``dtype('i8', False, True)`` + BUILD); only plain scalars."""

    def __init__(self, name: str, align: bool = False, copy: bool = True) -> None:
        if not isinstance(name, str) or name.lstrip("<>|=") not in NUMPY_SCALARS:
            raise UnsafePickle(f"numpy dtype {name!r} is not a plain scalar type; refused")
        self.dtype = np.dtype(name)

    def __setstate__(self, state: Any) -> None:
        # state = (version, byte order, ...): only the byte order matters for a scalar
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(dtype: _Dtype, data: bytes) -> int | float | bool:
    if not isinstance(dtype, _Dtype) or not isinstance(data, bytes):
        raise UnsafePickle("numpy scalar with unexpected arguments; refused")
    return np.frombuffer(data, dtype=dtype.dtype, count=1)[0].item()


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    # pickle protocol 2 writes bytes as _codecs.encode(str, 'latin1'); nothing else is accepted
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickle("_codecs.encode with unexpected arguments; refused")
    return text.encode("latin1")


def _rebuild_tensor(
    storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *rest: Any
) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise UnsafePickle("tensor rebuilt from something that is not a storage; refused")
    if not size:
        return storage[offset].clone()
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, *rest: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickle("parameter rebuilt from something that is not a tensor; refused")
    return data  # a plain tensor: nothing here is trained


def _device(*args: Any) -> str:
    return ":".join(str(a) for a in args)  # only recorded; every tensor is loaded on the CPU


SAFE = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "device"): _device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("__builtin__", "set"): set, ("builtins", "set"): set,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _Dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar, ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE:
            return SAFE[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        return _record_type(module, name)  # never imported; inert unless called, then refused

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickle(f"unexpected persistent id {str(pid)[:60]}; refused")
        _, kind, key, _location, numel = pid
        try:
            raw = self.archive.read(f"{self.prefix}data/{key}")
        except KeyError:
            raise UnsafePickle(f"storage {key!r} is missing from the archive") from None
        flat = torch.frombuffer(bytearray(raw), dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
        if flat.numel() != int(numel):
            raise UnsafePickle(f"storage {key!r} holds {flat.numel()} values, the pickle says {numel}")
        return flat


@dataclass(frozen=True)
class Checkpoint:
    """What a released checkpoint holds: its archive name, top-level class, and named tensors."""

    archive_name: str
    class_name: str
    tensors: dict[str, torch.Tensor]
    attributes: dict[str, Any]


def _state(obj: Any) -> dict:
    return obj.state if isinstance(obj, Record) and isinstance(getattr(obj, "state", None), dict) else {}


def named_tensors(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """``state_dict``-style names of a recorded module tree: its parameters, buffers and submodules'."""
    state, out = _state(obj), {}
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if isinstance(t, torch.Tensor):
                out[prefix + name] = t
    for name, child in (state.get("_modules") or {}).items():
        out.update(named_tensors(child, f"{prefix}{name}."))
    return out


def read_checkpoint(path: Path, allow_pickle: bool = False) -> Checkpoint:
    """Read a whole-module ``torch.save`` file with the restricted unpickler (see the module doc)."""
    path = Path(path)
    if not allow_pickle:
        raise DataError(path, "allow_pickle", "a released checkpoint is a pickle; pass --allow-pickle "
                        "(it is read with a restricted unpickler that runs none of its code)")
    if not path.is_file():
        raise DataError(path, None, "file not found")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(path, None, "not a torch.save zip archive") from None
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise DataError(path, "data.pkl", f"expected one data.pkl in the archive, found {len(pkl)}")
        prefix = pkl[0][: -len("data.pkl")]
        with archive.open(pkl[0]) as f:
            try:
                root = _Unpickler(f, archive, prefix).load()
            except UnsafePickle as e:
                raise DataError(path, "data.pkl", str(e)) from None
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                    RuntimeError) as e:
                problem = f"cannot read the pickle ({type(e).__name__}: {str(e)[:100]})"
                raise DataError(path, "data.pkl", problem) from None
    if not isinstance(root, Record):
        raise DataError(path, "data.pkl", f"expected a pickled module, got {type(root).__name__}")
    attrs = {k: v for k, v in _state(root).items() if isinstance(v, int | float | str | bool)}
    return Checkpoint(prefix.rstrip("/"), root.qualname, named_tensors(root), attrs)
