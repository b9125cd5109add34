"""The comparison of a published JSON Schema with its successor: what breaks consumers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import pytest
from pydantic import BaseModel, Field

from contract_schemas.compatibility import SchemaError, breaking_changes
from contracts.events import EventPayload, LineItem

Document = dict[str, Any]
PLACED = "order.placed.v1"


def problems_after(
    committed: dict[str, Document], name: str, change: Callable[[Document], object]
) -> list[str]:
    """The violations of a committed document after `change` edited a copy of it."""
    changed = copy.deepcopy(committed[name])
    change(changed)
    return [str(v) for v in breaking_changes(committed[name], changed, schema=name)]


def _props(document: Document, definition: str | None = None) -> dict[str, Any]:
    node = document["$defs"][definition] if definition else document
    properties: dict[str, Any] = node["properties"]
    return properties


# Breaking changes, made to the committed documents themselves.


def test_removing_a_property_is_breaking(committed: dict[str, Document]) -> None:
    found = problems_after(committed, PLACED, lambda d: _props(d).pop("currency"))

    assert found == [f"{PLACED}: currency: property removed"]


def test_removing_a_property_of_a_nested_definition_is_breaking(
    committed: dict[str, Document],
) -> None:
    def drop_price(document: Document) -> None:
        _props(document, "PricedLineItem").pop("unit_price_cents")
        document["$defs"]["PricedLineItem"]["required"].remove("unit_price_cents")

    found = problems_after(committed, PLACED, drop_price)

    assert found == [f"{PLACED}: items[].unit_price_cents: property removed"]


def test_retyping_a_property_is_breaking(committed: dict[str, Document]) -> None:
    found = problems_after(
        committed, PLACED, lambda d: _props(d)["total_cents"].update(type="string")
    )

    assert found == [f"{PLACED}: total_cents: type changed from integer to string"]


def test_narrowing_number_to_integer_is_breaking(committed: dict[str, Document]) -> None:
    old = copy.deepcopy(committed[PLACED])
    _props(old)["total_cents"]["type"] = "number"

    found = breaking_changes(old, committed[PLACED], schema=PLACED)

    assert [str(v) for v in found] == [
        f"{PLACED}: total_cents: type changed from number to integer"
    ]


def test_making_a_nullable_property_non_nullable_is_breaking(
    committed: dict[str, Document],
) -> None:
    def not_null(document: Document) -> None:
        _props(document)["subject"] = {"type": "string"}

    found = problems_after(committed, "cloudevent", not_null)

    assert found == [
        "cloudevent: subject: no longer accepts null (type was string | null, now string)"
    ]


def test_removing_an_enum_value_is_breaking(committed: dict[str, Document]) -> None:
    old = copy.deepcopy(committed[PLACED])
    _props(old)["currency"]["enum"] = ["EUR", "USD"]
    new = copy.deepcopy(old)
    _props(new)["currency"]["enum"] = ["EUR"]

    found = breaking_changes(old, new, schema=PLACED)

    assert [str(v) for v in found] == [f'{PLACED}: currency: values no longer allowed: "USD"']


def test_restricting_a_free_value_to_an_enum_is_breaking(committed: dict[str, Document]) -> None:
    found = problems_after(committed, PLACED, lambda d: _props(d)["currency"].update(enum=["EUR"]))

    assert found == [f'{PLACED}: currency: now restricted to the values "EUR"']


def test_changing_a_constant_is_breaking(committed: dict[str, Document]) -> None:
    found = problems_after(
        committed, "cloudevent", lambda d: _props(d)["specversion"].update(const="2.0")
    )

    assert found == ['cloudevent: specversion: values no longer allowed: "1.0"']


def test_changing_or_adding_a_format_is_breaking(committed: dict[str, Document]) -> None:
    changed = problems_after(
        committed, PLACED, lambda d: _props(d)["order_id"].update(format="uri")
    )
    added = problems_after(committed, PLACED, lambda d: _props(d)["currency"].update(format="iso"))

    assert changed == [f"{PLACED}: order_id: format changed from uuid to uri"]
    assert added == [f"{PLACED}: currency: format iso added"]


def test_making_an_optional_property_required_is_breaking(
    committed: dict[str, Document],
) -> None:
    name = "order.cancelled.v1"
    found = problems_after(committed, name, lambda d: d["required"].append("items"))

    assert found == [f"{name}: items: optional property made required"]


def test_adding_a_required_property_is_breaking(committed: dict[str, Document]) -> None:
    def add_required(document: Document) -> None:
        _props(document)["coupon"] = {"type": "string"}
        document["required"].append("coupon")

    found = problems_after(committed, PLACED, add_required)

    assert found == [f"{PLACED}: coupon: new required property"]


def test_tightening_a_bound_is_breaking(committed: dict[str, Document]) -> None:
    def tighten(document: Document) -> None:
        _props(document, "PricedLineItem")["quantity"]["minimum"] = 2
        _props(document, "PricedLineItem")["quantity"]["maximum"] = 99
        _props(document)["items"]["minItems"] = 3

    found = problems_after(committed, PLACED, tighten)

    assert sorted(found) == [
        f"{PLACED}: items: minItems tightened from 1 to 3",
        f"{PLACED}: items[].quantity: maximum 99 added",
        f"{PLACED}: items[].quantity: minimum tightened from 1 to 2",
    ]


def test_forbidding_additional_properties_is_breaking(committed: dict[str, Document]) -> None:
    found = problems_after(committed, "cloudevent", lambda d: d.update(additionalProperties=False))

    assert found == ["cloudevent: (document): additional properties are no longer allowed"]


def test_a_change_to_a_keyword_the_check_does_not_know_is_breaking(
    committed: dict[str, Document],
) -> None:
    found = problems_after(
        committed, PLACED, lambda d: _props(d)["currency"].update(propertyNames={"maxLength": 1})
    )

    assert found == [
        f"{PLACED}: currency: propertyNames changed, which this check cannot judge: "
        "treat it as breaking"
    ]


def test_a_reference_to_itself_is_an_error() -> None:
    looping = {"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"}

    with pytest.raises(SchemaError, match="refers only to itself"):
        breaking_changes(looping, looping, schema="loop")


def test_a_reference_to_a_missing_definition_is_an_error(committed: dict[str, Document]) -> None:
    broken = copy.deepcopy(committed[PLACED])
    del broken["$defs"]["PricedLineItem"]

    with pytest.raises(SchemaError, match="points nowhere"):
        breaking_changes(broken, committed[PLACED], schema=PLACED)


# Compatible changes.


def test_the_unchanged_document_has_no_violations(committed: dict[str, Document]) -> None:
    for name, document in committed.items():
        assert breaking_changes(document, copy.deepcopy(document), schema=name) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda d: _props(d).update(coupon={"anyOf": [{"type": "string"}, {"type": "null"}]}),
            id="new optional property",
        ),
        pytest.param(lambda d: _props(d)["total_cents"].update(type="number"), id="int to number"),
        pytest.param(
            lambda d: _props(d).update(
                currency={"anyOf": [{"type": "string"}, {"type": "null"}], "minLength": 3}
            ),
            id="made nullable, bound loosened",
        ),
        pytest.param(lambda d: _props(d)["order_id"].pop("format"), id="format dropped"),
        pytest.param(lambda d: d["required"].remove("currency"), id="required made optional"),
        pytest.param(
            lambda d: _props(d, "PricedLineItem")["quantity"].update(minimum=0), id="looser bound"
        ),
        pytest.param(lambda d: _props(d)["items"].pop("minItems"), id="bound dropped"),
        pytest.param(
            lambda d: d.update(description="Reworded.", title="Renamed"), id="annotations"
        ),
    ],
)
def test_a_compatible_change_passes(
    committed: dict[str, Document], change: Callable[[Document], object]
) -> None:
    assert problems_after(committed, PLACED, change) == []


def test_adding_an_enum_value_passes(committed: dict[str, Document]) -> None:
    old = copy.deepcopy(committed[PLACED])
    _props(old)["currency"]["enum"] = ["EUR"]
    new = copy.deepcopy(old)
    _props(new)["currency"]["enum"] = ["EUR", "USD"]

    assert breaking_changes(old, new, schema=PLACED) == []


# The same rules applied to pydantic models, as a change to the code would produce them.


class PlacedWithoutCurrency(EventPayload):
    event_type: ClassVar[str] = PLACED
    order_id: UUID
    user_id: UUID
    items: list[LineItem] = Field(min_length=1)
    total_cents: int = Field(ge=0)


class PlacedWithTextTotal(EventPayload):
    event_type: ClassVar[str] = PLACED
    order_id: UUID
    user_id: UUID
    items: list[LineItem] = Field(min_length=1)
    total_cents: str
    currency: str = Field(min_length=3, max_length=3)


class CancelledWithRequiredItems(EventPayload):
    event_type: ClassVar[str] = "order.cancelled.v1"
    order_id: UUID
    user_id: UUID
    reason: str
    items: list[LineItem]


class ConfirmedWithConfirmationTime(EventPayload):
    event_type: ClassVar[str] = "order.confirmed.v1"
    order_id: UUID
    user_id: UUID
    total_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    confirmed_at: datetime


class ConfirmedWithOptionalNote(EventPayload):
    event_type: ClassVar[str] = "order.confirmed.v1"
    order_id: UUID
    user_id: UUID
    total_cents: float = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    note: str | None = None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (PlacedWithoutCurrency, "currency: property removed"),
        (PlacedWithTextTotal, "total_cents: type changed from integer to string"),
        (CancelledWithRequiredItems, "items: optional property made required"),
        (ConfirmedWithConfirmationTime, "confirmed_at: new required property"),
    ],
)
def test_a_breaking_model_change_is_caught(
    committed: dict[str, Document], model: type[EventPayload], expected: str
) -> None:
    name = model.event_type
    found = breaking_changes(committed[name], model.model_json_schema(), schema=name)

    assert f"{name}: {expected}" in [str(v) for v in found]


def test_a_compatible_model_change_passes(committed: dict[str, Document]) -> None:
    name = ConfirmedWithOptionalNote.event_type
    new = ConfirmedWithOptionalNote.model_json_schema()

    assert breaking_changes(committed[name], new, schema=name) == []


class Category(BaseModel):
    name: str
    parent: Category | None = None
    children: list[Category] = []


class RetypedCategory(BaseModel):
    name: int
    parent: RetypedCategory | None = None
    children: list[RetypedCategory] = []


def test_recursive_definitions_are_compared_without_endless_recursion() -> None:
    old = Category.model_json_schema()
    retyped = breaking_changes(old, RetypedCategory.model_json_schema(), schema="tree")

    assert breaking_changes(old, Category.model_json_schema(), schema="tree") == []
    assert [str(v) for v in retyped] == ["tree: name: type changed from string to integer"]
