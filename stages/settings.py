"""``FIELD=VALUE`` overrides of a stage's dataclass config, typed from the field's annotation.

One parser for every ``--set`` of the CLI (``llara finetune``, ``llara stage``, ``python -m
stages.llm``): ``max_steps=8``, ``max_steps=none``, ``precision=bf16``, ``lora.r=4`` (a field of a
nested config) or ``lora={"r": 4, "dropout": 0.0}`` (JSON for a whole nested config). A bad field or
value raises ``SettingError`` with one line naming it and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class SettingError(ValueError):
    """An unknown field or an ill-typed value in a ``FIELD=VALUE`` override."""


def _type_name(kind: Any) -> str:
    if get_origin(kind) is Literal:
        return " | ".join(repr(a) for a in get_args(kind))
    if get_origin(kind) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(kind))
    if kind is type(None):
        return "none"
    return getattr(kind, "__name__", str(kind))


def _coerce(raw: str, kind: Any) -> Any:
    """Convert the text ``raw`` to a value of the annotated type ``kind``; ValueError if it is not one."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if type(None) in options and raw.strip().lower() in ("none", "null"):
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(raw, option)
            except ValueError:
                continue
        raise ValueError(raw)
    if origin is Literal:
        for choice in get_args(kind):
            if str(choice) == raw:
                return choice
        raise ValueError(raw)
    if origin is tuple:
        items = json.loads(raw) if raw.strip().startswith("[") else [x for x in raw.split(",") if x]
        return tuple(items)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    if kind is str:
        return raw
    if dataclasses.is_dataclass(kind):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(raw) from e
        if not isinstance(doc, dict):
            raise ValueError(raw)
        config = kind()
        for name, value in doc.items():
            text = value if isinstance(value, str) else json.dumps(value)
            config = apply_setting(config, f"{name}={text}")
        return config
    raise ValueError(raw)


def apply_setting(config: Any, text: str) -> Any:
    """``config`` with one ``FIELD=VALUE`` (or ``NESTED.FIELD=VALUE``) applied; SettingError if bad."""
    target, sep, raw = text.partition("=")
    head, _, rest = target.partition(".")
    name = type(config).__name__
    hints = get_type_hints(type(config))
    known = [f.name for f in dataclasses.fields(config)]
    if not sep:
        raise SettingError(f"--set {text!r}: expected FIELD=VALUE")
    if head not in known:
        raise SettingError(f"--set {text!r}: {head!r} is not a field of {name} (fields: {', '.join(known)})")
    kind = hints[head]
    if rest:
        nested = getattr(config, head)
        if not dataclasses.is_dataclass(nested):
            raise SettingError(f"--set {text!r}: {head} of {name} has no fields")
        return dataclasses.replace(config, **{head: apply_setting(nested, f"{rest}={raw}")})
    try:
        value = _coerce(raw, kind)
    except (ValueError, TypeError, json.JSONDecodeError, SettingError) as e:
        detail = f" ({e})" if isinstance(e, SettingError) else ""
        raise SettingError(f"--set {text!r}: {head} of {name} must be {_type_name(kind)}{detail}") from None
    try:
        return dataclasses.replace(config, **{head: value})
    except ValueError as e:  # a config's own __post_init__ check
        raise SettingError(f"--set {text!r}: {e}") from None


def apply_settings(config: Any, settings: typing.Iterable[str]) -> Any:
    """``config`` with every ``FIELD=VALUE`` of ``settings`` applied in order."""
    for text in settings:
        config = apply_setting(config, text)
    return config
