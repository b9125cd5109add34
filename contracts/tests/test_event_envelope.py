"""The CloudEvents envelope: what `new_event` writes, `parse_event` reads back or refuses."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.events import (
    EVENT_TYPES,
    CancellationReason,
    EventPayload,
    InvalidEventError,
    LineItem,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderPlacedV1,
    OrderRejectedV1,
    ProductUpdatedV1,
    RejectionReason,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
    UnknownEventError,
    UserRegisteredV1,
    new_event,
    parse_event,
)
from contracts.events.payloads import PricedLineItem

ORDER, USER, PRODUCT = uuid4(), uuid4(), uuid4()
SOURCE = "/fleet/orders"


def _samples() -> dict[str, EventPayload]:
    items = [LineItem(product_id=PRODUCT, quantity=2)]
    samples: list[EventPayload] = [
        OrderPlacedV1(
            order_id=ORDER,
            user_id=USER,
            items=[PricedLineItem(product_id=PRODUCT, quantity=2, unit_price_cents=1250)],
            total_cents=2500,
            currency="EUR",
        ),
        OrderConfirmedV1(order_id=ORDER, user_id=USER, total_cents=2500, currency="EUR"),
        OrderRejectedV1(
            order_id=ORDER,
            user_id=USER,
            reason="out of stock",
            reason_code=RejectionReason.OUT_OF_STOCK,
        ),
        OrderCancelledV1(
            order_id=ORDER,
            user_id=USER,
            reason="changed my mind",
            items=items,
            reason_code=CancellationReason.BY_CUSTOMER,
        ),
        StockReservedV1(order_id=ORDER, items=items),
        StockRejectedV1(
            order_id=ORDER,
            reason="out of stock",
            product_ids=[PRODUCT],
            reason_code=RejectionReason.OUT_OF_STOCK,
        ),
        StockReleasedV1(order_id=ORDER, items=items),
        UserRegisteredV1(user_id=USER, email="ada@example.com"),
        ProductUpdatedV1(
            product_id=PRODUCT, sku="SKU-1", name="Lamp", price_cents=1250, currency="EUR", stock=7
        ),
    ]
    return {sample.event_type: sample for sample in samples}


SAMPLES = _samples()


def _body(**changes: Any) -> bytes:
    document = json.loads(new_event(SAMPLES["order.placed.v1"], source=SOURCE).to_json())
    document.update(changes)
    return json.dumps(document).encode()


def test_every_registered_event_type_has_a_sample() -> None:
    assert SAMPLES.keys() == EVENT_TYPES.keys()


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_an_event_survives_the_wire(event_type: str) -> None:
    payload = SAMPLES[event_type]
    event = new_event(
        payload,
        source=SOURCE,
        subject=str(ORDER),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        correlation_id="corr-1",
        causation_id="cause-1",
    )

    parsed_event, parsed_payload = parse_event(event.to_json(), EVENT_TYPES)

    assert parsed_event == event
    assert parsed_payload == payload
    assert type(parsed_payload) is EVENT_TYPES[event_type]


def test_new_event_fills_the_cloudevents_attributes() -> None:
    event = new_event(SAMPLES["user.registered.v1"], source="/fleet/auth")
    wire = json.loads(event.to_json())

    assert wire["specversion"] == "1.0"
    assert wire["type"] == "user.registered.v1"
    assert wire["datacontenttype"] == "application/json"
    assert UUID(wire["id"]).version == 4
    assert wire["time"].endswith("Z")
    assert wire["data"] == {"user_id": str(USER), "email": "ada@example.com"}
    # Absent optional attributes are left out, not sent as null.
    assert not {"subject", "traceparent", "correlationid", "causationid"} & wire.keys()


def test_parse_event_accepts_text_as_well_as_bytes() -> None:
    event = new_event(SAMPLES["stock.reserved.v1"], source="/fleet/catalog")

    assert parse_event(event.to_json().decode(), EVENT_TYPES)[0] == event


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"\xff\xfe{}", b"[" * 100_000, b""],
    ids=["text", "not utf-8", "nested too deep", "empty"],
)
def test_parse_event_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(InvalidEventError, match="not a CloudEvent"):
        parse_event(raw, EVENT_TYPES)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"hello": "world"}',
        b"[1, 2]",
        b'"order.placed.v1"',
        _body(specversion="0.3"),
        _body(id="not-a-uuid"),
        _body(source=""),
        _body(data=None),
    ],
    ids=["other object", "array", "string", "other specversion", "bad id", "no source", "no data"],
)
def test_parse_event_refuses_what_is_not_a_cloudevent(raw: bytes) -> None:
    with pytest.raises(InvalidEventError, match="not a CloudEvent"):
        parse_event(raw, EVENT_TYPES)


def test_parse_event_refuses_an_unknown_type() -> None:
    with pytest.raises(UnknownEventError, match=r"unknown event type 'order\.shipped\.v1'"):
        parse_event(_body(type="order.shipped.v1"), EVENT_TYPES)


@pytest.mark.parametrize(
    "data",
    [
        {"order_id": str(ORDER)},
        {**SAMPLES["order.placed.v1"].model_dump(mode="json"), "total_cents": "lots"},
        {**SAMPLES["order.placed.v1"].model_dump(mode="json"), "items": []},
    ],
    ids=["missing fields", "wrong type", "constraint violated"],
)
def test_parse_event_refuses_data_that_does_not_match_the_payload(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventError, match=r"order\.placed\.v1 data does not match"):
        parse_event(_body(data=data), EVENT_TYPES)


def test_payload_readers_ignore_fields_they_do_not_know() -> None:
    data = {**SAMPLES["order.placed.v1"].model_dump(mode="json"), "coupon": "SPRING"}
    data["items"][0]["gift_wrap"] = True

    _, payload = parse_event(_body(data=data), EVENT_TYPES)

    assert payload == SAMPLES["order.placed.v1"]


def _rejection(**changes: Any) -> bytes:
    data = {**SAMPLES["order.rejected.v1"].model_dump(mode="json"), **changes}
    document = json.loads(new_event(SAMPLES["order.rejected.v1"], source=SOURCE).to_json())
    return json.dumps({**document, "data": data}).encode()


def test_a_reason_code_is_read_as_its_enum_member() -> None:
    _, payload = parse_event(_rejection(reason_code="timed_out"), EVENT_TYPES)

    assert isinstance(payload, OrderRejectedV1)
    assert payload.reason_code is RejectionReason.TIMED_OUT


@pytest.mark.parametrize("code", ["payment_declined", None])
def test_a_reason_code_unknown_to_the_reader_or_absent_reads_as_absent(code: str | None) -> None:
    """A newer producer may add a code (compatible: a new enum value); an older one sends none.
    Either way the event is read, and the reader falls back to the wording in `reason`."""
    body = _rejection(reason_code=code) if code else _rejection()
    if code is None:
        document = json.loads(body)
        del document["data"]["reason_code"]
        body = json.dumps(document).encode()

    _, payload = parse_event(body, EVENT_TYPES)

    assert isinstance(payload, OrderRejectedV1)
    assert payload.reason_code is None
    assert payload.reason == "out of stock"


def test_unknown_envelope_extensions_are_kept() -> None:
    event, _ = parse_event(_body(partitionkey="eu-1"), EVENT_TYPES)

    assert event.model_extra == {"partitionkey": "eu-1"}
    assert json.loads(event.to_json())["partitionkey"] == "eu-1"
