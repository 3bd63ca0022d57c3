"""Input checks shared by every repository. Each raises ValidationError before anything is written."""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping
from typing import Any, TypeVar, cast

from threadstore.errors import ValidationError, shown

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512
MAX_INT32 = 2**31 - 1  # token counts and limits are 32-bit integers on PostgreSQL
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
# JSON arguments (LangGraph kwargs, metadata and values, tool parameters, step details, search
# filters) nest at most this deep: deeper data would exhaust Python's recursion (json, the
# drivers) long before any API needs it.
MAX_JSON_DEPTH = 64

E = TypeVar("E", bound=str)

# The default of an update's argument that was left out (None is a value: it clears the field).
UNSET: Any = object()


def check_string(name: str, value: object, *, max_length: int | None = None) -> str:
    """Return `value` if it is a string without NUL characters and within `max_length`.

    Raises:
        ValidationError: it is not a string, holds a NUL character, or is too long.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, not {type(value).__name__}.")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValidationError(f"{name} must be valid Unicode text (no lone surrogates).") from error
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{name} must be at most {max_length} characters, got {len(value)}.")
    return value


def check_optional_string(name: str, value: object, *, max_length: int | None = None) -> str | None:
    """Like check_string, but None passes through.

    Raises:
        ValidationError: as check_string.
    """
    return None if value is None else check_string(name, value, max_length=max_length)


def check_choice(name: str, value: object, allowed: Collection[E]) -> E:
    """Return `value` if it is one of `allowed`.

    Raises:
        ValidationError: it is not.
    """
    if isinstance(value, str) and value in allowed:
        return cast(E, value if type(value) is str else str.__str__(value))  # a plain str, not a StrEnum
    raise ValidationError(f"{name} must be one of {sorted(allowed)}, got {shown(value)}.")


def check_metadata(metadata: object) -> dict[str, str]:
    """Return a copy of `metadata` if it obeys the API's limits; None becomes {}.

    Raises:
        ValidationError: not a mapping, over 16 keys, a key over 64 characters, a value that is
            not a string or is over 512 characters, or a NUL character anywhere.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"metadata must be a mapping of strings, not {type(metadata).__name__}.")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValidationError(f"metadata may have at most {MAX_METADATA_KEYS} keys, got {len(metadata)}.")
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        check_string("metadata key", key, max_length=MAX_METADATA_KEY_LENGTH)
        checked[key] = check_string(f"metadata[{shown(key)}]", value, max_length=MAX_METADATA_VALUE_LENGTH)
    return checked


def check_json(name: str, value: object) -> Any:
    """Return `value` if it is plain JSON (dict with string keys, list, str, int, finite float,
    bool, None) with no NUL character or lone surrogate in any string, integers within 64 bits
    (what every backend stores and compares as a number), nested at most MAX_JSON_DEPTH deep.

    Raises:
        ValidationError: it holds anything else.
    """
    return _json(value, name, 1)


# Where a value sits, spelled out only in an error: the argument's name, or (parent, key or index).
Path = str | tuple["Path", object]


def _plain(text: str) -> bool:
    """Whether a string needs no further check (ASCII without NUL), the common case."""
    return text.isascii() and "\x00" not in text


def _json(value: Any, path: Path, depth: int) -> Any:
    """check_json at `path`, `depth` levels deep (the argument itself is at 1). Building every
    element's name up front cost more than checking it, and so did a call per string: a dict's
    plain string keys and values, and a list's plain strings, are checked in place. Dicts and
    lists, the values this is called for most, are tested for first."""
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(f"{_name(path, root=True)} must nest at most {MAX_JSON_DEPTH} levels deep.")
        if kind is not dict:
            return [
                item
                if type(item) is str and item.isascii() and "\x00" not in item
                else _json(item, (path, index), depth + 1)
                for index, item in enumerate(value)
            ]
        return {
            (key if type(key) is str and key.isascii() and "\x00" not in key else _json_key(key, path)): (
                item
                if type(item) is str and item.isascii() and "\x00" not in item
                else _json(item, (path, key), depth + 1)
            )
            for key, item in value.items()
        }
    if kind is str:
        return value if _plain(value) else check_string(_name(path), value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if not MIN_INT64 <= value <= MAX_INT64:
            raise ValidationError(f"{_name(path)} must be an integer within 64 bits (±2**63).")
        return value
    if isinstance(value, Mapping):  # another kind of mapping: checked as the dict it is copied to
        return _json(dict(value.items()), path, depth)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{_name(path)} must not contain NaN or infinity.")
        return value
    if isinstance(value, str | int):  # a subclass (a StrEnum, an IntEnum): its plain value
        return _json(str.__str__(value) if isinstance(value, str) else int(value), path, depth)
    raise ValidationError(f"{_name(path)} must be JSON data, not {kind.__name__}.")


def _json_key(key: object, path: Path) -> str:
    """A key that is not a plain string: a string after all, or an error."""
    return check_string(f"{_name(path)} key", key)


def _name(path: Path, *, root: bool = False) -> str:
    """`metadata.a[0]` from (("metadata", "a"), 0); the argument's name alone with `root`."""
    steps: list[object] = []
    while isinstance(path, tuple):
        path, step = path
        steps.append(step)
    name = path
    if root:
        return name
    for step in reversed(steps):
        name += f"[{step}]" if isinstance(step, int) else f".{step}"
    return name


def check_mapping(name: str, value: object) -> dict[str, Any]:
    """Return `value` as a JSON object.

    Raises:
        ValidationError: it is not a mapping of JSON data.
    """
    if type(value) is not dict and not isinstance(value, Mapping):  # a dict spares the ABC's check
        raise ValidationError(f"{name} must be an object, not {type(value).__name__}.")
    checked: dict[str, Any] = _json(value, name, 1)
    return checked


def check_list(name: str, value: object) -> list[Any]:
    """Return `value` as a list.

    Raises:
        ValidationError: it is not a list or tuple.
    """
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{name} must be a list, not {type(value).__name__}.")
    return list(value)


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int = MAX_INT64) -> int:
    """Return `value` if it is an int (not a bool) within the bounds (at most a 64-bit integer).

    Raises:
        ValidationError: it is not, or is out of bounds.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer, not {type(value).__name__}.")
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, got {shown(value)}.")
    if value > maximum:
        raise ValidationError(f"{name} must be at most {maximum}, got {shown(value)}.")
    return value


def check_optional_int(name: str, value: object, *, minimum: int | None = None, maximum: int = MAX_INT64) -> int | None:
    """Like check_int, but None passes through.

    Raises:
        ValidationError: as check_int.
    """
    return None if value is None else check_int(name, value, minimum=minimum, maximum=maximum)


def check_optional_number(name: str, value: object, *, minimum: float, maximum: float) -> float | None:
    """Return `value` as a float if it is a finite number within the bounds; None passes through.

    Raises:
        ValidationError: it is not a number or is out of bounds.
    """
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, got {shown(value)}.")
    if not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be between {minimum} and {maximum}, got {shown(value)}.")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """Return `value` if it is a bool.

    Raises:
        ValidationError: it is not.
    """
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be true or false, not {shown(value)}.")
    return value


def check_uuid(name: str, value: object) -> str:
    """Return `value` as a canonical lowercase UUID string.

    Raises:
        ValidationError: it is not a UUID.
    """
    text = check_string(name, value)
    try:
        return str(uuid.UUID(text))
    except ValueError as error:
        raise ValidationError(f"{name} must be a UUID, got {shown(text)}.") from error


def check_json_object(name: str, value: object) -> dict[str, Any]:
    """Return `value` (None becomes {}) as a JSON object with string keys and JSON values.

    Raises:
        ValidationError: it is not a mapping of JSON data, or holds a NUL character.
    """
    return {} if value is None else check_mapping(name, value)
