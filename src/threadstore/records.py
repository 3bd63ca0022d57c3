"""What the API value objects share: the JSON aliases, and `from_row` built from their fields.

An API object (`openai.api`, `langgraph.api`) is a frozen dataclass built from one row. Its
constructor arguments come from the row by `row_reader`, made once per class from the class's
own fields, so a field added to a dataclass is read from the column of its name without being
restated anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Json = dict[str, Any]
"""A JSON object, decoded."""
JsonList = list[dict[str, Any]]
"""A JSON array of objects, decoded."""
Row = Mapping[Any, Any]
"""One row as the executor returns it: column name → decoded value."""
RowReader = Callable[[Row], "tuple[Any, ...] | list[Any]"]


def row_reader(cls: type[DataclassInstance], built: Mapping[str, Callable[[Row], Any]] | None = None) -> RowReader:
    """A function from a row to `cls`'s constructor arguments, in the order of its fields.

    Each field is the row's column of the same name, all read by one `itemgetter` call, except
    the fields named in `built`: each of those is made from the row by its function (a nested
    object built from several columns).

    Raises:
        ValueError: if `built` names a field `cls` does not have.
    """
    names = [field.name for field in fields(cls)]
    built = built or {}
    unknown = sorted(set(built) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {unknown}")
    columns = itemgetter(*(name for name in names if name not in built))
    if not built:
        return columns
    places = sorted((names.index(name), build) for name, build in built.items())

    def arguments(row: Row) -> list[Any]:
        values = list(columns(row))
        for place, build in places:  # ascending, so each lands at its own field's index
            values.insert(place, build(row))
        return values

    return arguments
