"""One section of params.yaml (or any mapping of settings) into its frozen config dataclass.

Every section is parsed the same way, from the dataclass itself: its fields are the keys the
section may hold (any other key is refused by name), a key's value is checked against the
field's annotation (bool, int, float, str, Literal choices, `X | None`, `tuple[X, ...]` from a
list, `Mapping[K, V]`), and a key that is missing keeps the field's default (a field without
one is a required key). A field whose params.yaml form differs from its Python form names a
hook in its metadata (`parsed_by`): the hook turns the key's value into one or more fields
(meter's `rules` table fills `rules` and `pairs`); a field filled that way is marked `set_by`
and is no key of its own. Range and consistency checks stay in each dataclass's
`__post_init__`.

This module imports no stage, so that a config class's own module (the tokenizer's vocabulary,
say) can use it without loading the others.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
Hook = Callable[[Any], Mapping[str, Any]]

_HOOK = "params_hook"  # field metadata: the hook that parses this key
_SET_BY = "params_set_by"  # field metadata: not a key; what fills it instead


def parsed_by(hook: Hook) -> dict[str, Hook]:
    """Field metadata: params.yaml's value of this key goes through `hook`, which returns the
    field values it stands for (ValueError for a bad value)."""
    return {_HOOK: hook}


def set_by(source: str) -> dict[str, str]:
    """Field metadata: this field is no params.yaml key; `source` fills it (the key whose hook
    sets it, or a caller's `fixed` value such as a name taken from the enclosing key)."""
    return {_SET_BY: source}


def section_keys(cls: type) -> tuple[str, ...]:
    """The keys a section parsed into `cls` may hold, in field order."""
    return tuple(f.name for f in dataclasses.fields(cls) if _SET_BY not in f.metadata)


def key_fields(cls: type, key: str) -> tuple[str, ...]:
    """The fields of `cls` that the section key `key` sets: itself and those its hook fills."""
    return tuple(
        f.name for f in dataclasses.fields(cls) if f.name == key or f.metadata.get(_SET_BY) == key
    )


def parse_section(cls: type[T], data: Mapping[str, Any], **fixed: Any) -> T:
    """`cls` built from the section `data`; `fixed` adds fields that are no keys (a name).

    ValueError names an unknown key or a key whose value has the wrong type; the dataclass's
    own checks raise theirs.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a mapping of parameters, not {type(data).__name__}")
    keys = section_keys(cls)
    unknown = [str(k) for k in data if k not in keys]
    if unknown:
        raise ValueError(
            f"unknown parameters: {', '.join(sorted(unknown))} (known: {', '.join(keys)})"
        )
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    missing = [k for k in keys if k not in data and k not in fixed and _required(by_name[k])]
    if missing:
        raise ValueError(f"missing parameters: {', '.join(missing)}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = dict(fixed)
    for key, raw in data.items():
        hook = by_name[key].metadata.get(_HOOK)
        if hook is not None:
            values.update(hook(raw))
        else:
            values[key] = checked(raw, hints[key], key)
    return cls(**values)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def checked(value: Any, annotation: Any, name: str) -> Any:
    """`value` as a field annotated `annotation` holds it (lists become tuples, mappings dicts);
    ValueError naming `name` when it does not fit."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return checked(value, option, name)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; or ".join(errors))
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{name} must be one of {', '.join(map(repr, args))}, not {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name} must be a list, not {value!r}")
        item = args[0]  # tuple[X, ...]: the only form configs use
        return tuple(checked(v, item, f"{name}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a mapping, not {value!r}")
        key_type, value_type = args
        return {
            checked(k, key_type, f"a key of {name}"): checked(v, value_type, f"{name}.{k}")
            for k, v in value.items()
        }
    return _scalar(value, annotation, name)


def _scalar(value: Any, annotation: Any, name: str) -> Any:
    # bool is an int to Python, but `true` is no count and `1` no switch.
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, not {value!r}")
    accepted = {int: (int,), float: (int, float), str: (str,)}.get(annotation)
    if accepted is None:
        raise TypeError(f"{name}: config fields of type {annotation!r} cannot be checked")
    if isinstance(value, accepted) and not isinstance(value, bool):
        return value
    kind = {int: "an integer", float: "a number", str: "text"}[annotation]
    raise ValueError(f"{name} must be {kind}, not {value!r}")
