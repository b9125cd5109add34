"""The JSON Schema documents the code defines today, and their one canonical text."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from contracts.commands import COMMAND_TYPES
from contracts.events import EVENT_TYPES, CloudEvent

Schema = dict[str, Any]

ENVELOPE = "cloudevent"
"""Document name of the CloudEvent envelope; every other document is named by its event or
command type."""

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NOTICE = (
    "Generated from the pydantic models in contracts.events and contracts.commands by "
    "`python -m contract_schemas export`: change the model, not this file."
)


def current_documents() -> dict[str, Schema]:
    """Envelope and every registered payload, by document name, as the files will hold them."""
    models: dict[str, type[BaseModel]] = {ENVELOPE: CloudEvent, **EVENT_TYPES, **COMMAND_TYPES}
    documents = {
        name: {"$schema": DIALECT, "$comment": NOTICE, **model.model_json_schema()}
        for name, model in sorted(models.items())
    }
    # Through the text and back: compared exactly as it will be read from the file.
    return {name: json.loads(render(document)) for name, document in documents.items()}


def render(document: Schema) -> str:
    """Deterministic text: sorted keys, two-space indentation, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(name: str) -> str:
    return f"{name}.json"
