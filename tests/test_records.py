"""`records.row_reader`: an API object's constructor arguments come from its own fields."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from threadstore.records import row_reader


@dataclass(frozen=True)
class Point:
    x: int
    label: str
    y: int


def test_each_field_is_read_from_the_column_of_its_name() -> None:
    read = row_reader(Point)
    assert Point(*read({"y": 2, "x": 1, "label": "p", "other": 0})) == Point(1, "p", 2)


def test_a_built_field_is_made_by_its_function_and_put_in_its_place() -> None:
    read = row_reader(Point, {"label": lambda row: f"{row['x']},{row['y']}"})
    assert Point(*read({"x": 1, "y": 2})) == Point(1, "1,2", 2)


def test_building_a_field_the_class_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="z"):
        row_reader(Point, {"z": lambda row: 0})
