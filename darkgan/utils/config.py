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
import typing
from typing import Any, TypeVar

from darkgan.errors import DarkGANError

T = TypeVar("T")


@functools.lru_cache(maxsize=None)
def _adapter(cls: type):
    import pydantic

    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.TypeAdapter(pydantic.dataclasses.dataclass(cls, config=config)
                                if not hasattr(cls, "__pydantic_validator__") else cls)


#: pydantic error types -> the phrase our one-line messages use.
_PHRASES = {
    "float_parsing": "expected a number", "float_type": "expected a number",
    "int_parsing": "expected an integer", "int_type": "expected an integer",
    "int_from_float": "expected an integer", "bool_parsing": "expected true/false",
    "bool_type": "expected true/false", "string_type": "expected a string",
    "tuple_type": "expected a list", "list_type": "expected a list", "dict_type": "expected a mapping",
    "dataclass_type": "expected a JSON object",
}


def _where(loc: tuple) -> str:
    """A pydantic error location as a dotted key (``("train", "betas", 1)`` -> ``train.betas[1]``)."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not p.startswith("function-"):
            out += f".{p}" if out else p
    return out


def _message(cls: type, section: str, err: dict) -> str:
    """One line naming the key of pydantic error ``err`` and the problem."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(p for p in (section, _where(loc)) if p) or cls.__name__
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = _type_at(cls, loc[:-1])
        where = ".".join(p for p in (section, _where(loc[:-1])) if p) or cls.__name__
        known = ", ".join(sorted(f.name for f in dataclasses.fields(parent))) if dataclasses.is_dataclass(parent) else ""
        return f"unknown key {key!r}; known {where} keys: {known}"
    return f"{key}: {_PHRASES.get(err['type'], err['msg'])}, got {err.get('input')!r}"


def _type_at(cls: Any, path: tuple | list) -> Any:
    """The annotation of the field at ``path`` inside dataclass ``cls`` (``X | None`` -> ``X``),
    or ``None`` where the path leaves the annotated tree."""
    tp = cls
    for p in path:
        if dataclasses.is_dataclass(tp) and isinstance(p, str):
            tp = _field_types(tp).get(p)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is tuple and isinstance(p, int):
            args = typing.get_args(tp)
            tp = args[0] if args[-1] is Ellipsis else args[p] if p < len(args) else None
        else:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if type(None) in typing.get_args(tp) and len(args) == 1:
            tp = args[0]
    return tp


def is_list_of(tp: Any, item: Any = None) -> bool:
    """True if annotation ``tp`` is a variadic tuple ``tuple[X, ...]`` (of ``item``, if given)."""
    args = typing.get_args(tp)
    return (typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis
            and (item is None or args[0] is item))


def config_from_dict(cls: type[T], data: dict, section: str = "") -> T:
    """Build the dataclass ``cls`` from a JSON dict, checking every field's type.

    Args:
        cls: a stdlib ``@dataclass`` (fields may be nested dataclasses).
        data: ``{field: value}``; missing fields take their defaults.
        section: a prefix for error messages (``"train"`` -> ``train.lr: ...``).

    Returns:
        An instance of ``cls`` (a plain stdlib dataclass instance, tuples where annotated).

    Raises:
        DarkGANError: unknown field, wrong type, or ``data`` not a dict; one line naming the key
            (``train.lr: expected a number, got 'fast'``, ``unknown key 'model.chanels'; known
            model keys: ...``).
    """
    if not isinstance(data, dict):
        raise DarkGANError(f"{section or cls.__name__}: expected a JSON object, got {type(data).__name__}")
    import pydantic

    try:
        validated = _adapter(cls).validate_python(data)
    except pydantic.ValidationError as e:
        extra = "" if e.error_count() == 1 else f" (and {e.error_count() - 1} more)"
        raise DarkGANError(_message(cls, section, e.errors()[0]) + extra) from None
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
    """A ``--set`` value: JSON (``5e-4``, ``[64, 32]``, ``{"a": 1}``, ``"x"``; a value starting with
    ``(`` may use parentheses for lists: ``(0.5,0.9)``), else ``true``/``false``/``none``/``null``
    in any case, else the bare word as a string (pydantic reads ``yes``/``off`` where a bool is
    wanted, and ``nan`` where a number is)."""
    t = text.strip()
    try:
        return json.loads(t.replace("(", "[").replace(")", "]") if t.startswith("(") else t)
    except json.JSONDecodeError:
        return {"true": True, "false": False, "none": None, "null": None}.get(t.lower(), t)


def apply_overrides(obj: T, overrides: list[str] | tuple[str, ...], per_item: dict[str, int] | None = None) -> T:
    """Return a copy of the dataclass ``obj`` with ``key.path=value`` overrides applied and typed.

    Args:
        obj: a dataclass instance.
        overrides: ``["section.field=value", "train.loss_weights.g_f0=0.5", ...]``; values are
            parsed by :func:`parse_value`; a dict field takes new keys (``validate`` decides
            whether they are known); a word-list field (``tuple[str, ...]``) also takes
            ``a,b,c`` and ``none`` (the empty list).
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
            raise DarkGANError(f"override {item!r}: expected section.key=value, e.g. train.lr=0.0005")
        value = parse_value(text)
        *parents, leaf = key.split(".")
        if is_list_of(_type_at(type(obj), key.split(".")), str) and (value is None or isinstance(value, str)):
            value = [w.strip() for w in (value or "").split(",") if w.strip() and w.strip().lower() != "none"]
        if per_item and key in per_item and not isinstance(value, list):
            value = [value] * per_item[key]
        node = data
        for i, p in enumerate(parents):
            if not isinstance(node, dict) or p not in node or not isinstance(node[p], dict):
                raise DarkGANError(f"unknown key {'.'.join(parents[:i + 1])!r} in override {item!r}")
            node = node[p]
        node[leaf] = value
    return config_from_dict(type(obj), data)
