"""An export's file, written as it is read: orders in, bytes out, in constant memory.

CSV has one row per order line (an order's own columns repeated on each of its lines), so a
spreadsheet sums and filters it without unnesting; JSON Lines has one order per line with its
lines nested, so a program reads whole orders. Both carry the same fields.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from contracts.commands import ExportFormat
from worker.sources import OrderRecord

CSV_COLUMNS = (
    "order_id",
    "created_at",
    "status",
    "total_cents",
    "currency",
    "product_id",
    "quantity",
    "unit_price_cents",
)
CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/jsonl; charset=utf-8",
}
# Bytes gathered before a chunk is handed on: small enough to stay constant, large enough that
# the upload is not called per row.
CHUNK_BYTES = 256 * 1024


@dataclass
class Tally:
    """What went into the file so far."""

    orders: int = 0


def _csv_rows(order: OrderRecord) -> list[list[object]]:
    head = [order.id, order.created_at.isoformat(), order.status, order.total_cents, order.currency]
    return [[*head, line.product_id, line.quantity, line.unit_price_cents] for line in order.items]


def _json_line(order: OrderRecord) -> str:
    document = {
        "order_id": str(order.id),
        "created_at": order.created_at.isoformat(),
        "status": order.status,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "items": [
            {
                "product_id": str(line.product_id),
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in order.items
        ],
    }
    return json.dumps(document, separators=(",", ":")) + "\n"


async def encode(
    orders: AsyncIterable[OrderRecord], fmt: ExportFormat, tally: Tally
) -> AsyncIterator[bytes]:
    """The file's bytes in chunks of about `CHUNK_BYTES`, counting orders into `tally`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt is ExportFormat.CSV:
        writer.writerow(CSV_COLUMNS)
    async for order in orders:
        tally.orders += 1
        if fmt is ExportFormat.CSV:
            writer.writerows(_csv_rows(order))
        else:
            buffer.write(_json_line(order))
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
