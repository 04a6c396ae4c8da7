"""Typed configurations for every model family: stdlib dataclasses validated by pydantic.

A family's configuration is a tree of ``@dataclass`` classes with type annotations (``int``,
``float``, ``str``, ``bool``, ``tuple[int, ...]``, ``dict[str, float]``, nested dataclasses,
``X | None``) and a dict of named presets. This module gives all of them the same three
operations, with one error contract (a one-line :class:`~darkgan.errors.DarkGANError` naming the
key and the problem):

- :func:`config_from_dict` (JSON dict -> dataclass, types checked and coerced: a JSON list becomes
  a tuple, ``1`` a float where a float is wanted; unknown keys are errors),
- :func:`config_to_dict` (dataclass -> JSON-ready dict, tuples as lists),
- :func:`apply_overrides` (``["train.lr=5e-4", "model.channels=[64,32]"]`` -> a new dataclass).

Validation is by `pydantic <https://docs.pydantic.dev>`_ (``TypeAdapter`` over the stdlib
dataclass, strict about unknown fields); semantic checks (ranges, consistency between fields)
stay in each config's own ``validate`` method.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, TypeVar

from darkgan.errors import DarkGANError

T = TypeVar("T")


@functools.lru_cache(maxsize=None)
def _adapter(cls: type):
    import pydantic

    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.TypeAdapter(pydantic.dataclasses.dataclass(cls, config=config)
                                if not hasattr(cls, "__pydantic_validator__") else cls)


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def config_from_dict(cls: type[T], data: dict, section: str = "") -> T:
    """Build the dataclass ``cls`` from a JSON dict, checking every field's type.

    Args:
        cls: a stdlib ``@dataclass`` (fields may be nested dataclasses).
        data: ``{field: value}``; missing fields take their defaults.
        section: a prefix for error messages (``"train"`` -> ``train.lr: ...``).

    Returns:
        An instance of ``cls`` (a plain stdlib dataclass instance, tuples where annotated).

    Raises:
        DarkGANError: unknown field, wrong type, or ``data`` not a dict; the message names the key.
    """
    if not isinstance(data, dict):
        raise DarkGANError(f"{section or cls.__name__}: expected a JSON object, got {type(data).__name__}")
    import pydantic

    try:
        validated = _adapter(cls).validate_python(data)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        key = ".".join(p for p in (section, _where(err["loc"])) if p)
        extra = "" if e.error_count() == 1 else f" (and {e.error_count() - 1} more)"
        raise DarkGANError(f"{key or cls.__name__}: {err['msg']} (got {err.get('input')!r}){extra}") from None
    return _to_stdlib(cls, validated)


def _to_stdlib(cls: type, obj: Any) -> Any:
    """The validated pydantic-dataclass instance as an instance of the plain stdlib ``cls``."""
    kwargs = {}
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        v = getattr(obj, f.name)
        tp = hints[f.name]
        kwargs[f.name] = _to_stdlib(tp, v) if dataclasses.is_dataclass(tp) and v is not None else v
    return cls(**kwargs)


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def config_to_dict(obj: Any) -> dict:
    """A dataclass instance as a JSON-ready dict (tuples become lists, nested dataclasses dicts)."""
    return _jsonable(dataclasses.asdict(obj))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON (``5e-4``, ``[64, 32]``, ``{"a": 1}``, ``"x"``), else Python-style
    ``True``/``False``/``None``, else the bare word as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(text.strip(), text.strip())


def apply_overrides(obj: T, overrides: list[str] | tuple[str, ...], per_item: dict[str, int] | None = None) -> T:
    """Return a copy of the dataclass ``obj`` with ``key.path=value`` overrides applied and typed.

    Args:
        obj: a dataclass instance.
        overrides: ``["section.field=value", "train.loss_weights.g_f0=0.5", ...]``; values are
            parsed by :func:`parse_value`; a dict field takes new keys (``validate`` decides
            whether they are known).
        per_item: ``{"dotted.field": n}``: a scalar given for one of these tuple fields is
            repeated ``n`` times (e.g. a per-scale setting given once for every scale).

    Raises:
        DarkGANError: an override without ``=``, an unknown key, or a value of the wrong type.
    """
    data = config_to_dict(obj)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DarkGANError(f"override {item!r} must look like section.field=value")
        value = parse_value(text)
        if per_item and key in per_item and not isinstance(value, list):
            value = [value] * per_item[key]
        *parents, leaf = key.split(".")
        node = data
        for i, p in enumerate(parents):
            if not isinstance(node, dict) or p not in node or not isinstance(node[p], dict):
                raise DarkGANError(f"unknown setting {'.'.join(parents[:i + 1])!r} in override {item!r}")
            node = node[p]
        node[leaf] = value
    return config_from_dict(type(obj), data)
