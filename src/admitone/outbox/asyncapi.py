"""The AsyncAPI 3.0 document of the domain-event topic, generated from the contracts.

Every domain-event contract (``outbox/contracts.py`` and the chat contracts in ``chat/schemas.py``)
becomes one message on the one Kafka topic the stream relay writes to. A message's payload is the
envelope (``Envelope``) whose ``type`` and ``version`` are fixed to the contract's and whose ``payload``
is the contract's schema; its Kafka key is the ticketing event's id (so one event's stream stays on one
partition, in order) and its headers repeat ``type`` and ``version``, so that a consumer can route or
skip a record without parsing it.

``admitone asyncapi`` prints or writes the document; ``docs/asyncapi.json`` is its committed copy and a
test fails when the two differ.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from admitone import __version__
from admitone.core.deps import StateDep
from admitone.core.settings import Settings
from admitone.outbox.contracts import CONTRACTS, DomainEvent, Envelope

# Modules that define domain-event contracts besides ``outbox/contracts.py``. A contract defined anywhere
# else must be listed here to be part of the document (tests check that the known ones are).
CONTRACT_MODULES = ("admitone.outbox.contracts", "admitone.chat.schemas")

DEFAULT_TOPIC: str = Settings.model_fields["kafka_topic"].default
SCHEMA_REF = "#/components/schemas/{model}"
KAFKA_BINDING_VERSION = "0.5.0"


def all_contracts() -> dict[tuple[str, int], type[DomainEvent]]:
    """Every domain-event contract, by ``(type, version)``, sorted."""
    for name in CONTRACT_MODULES:
        importlib.import_module(name)
    found: dict[tuple[str, int], type[DomainEvent]] = dict(CONTRACTS)
    todo: list[type[DomainEvent]] = list(DomainEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "TYPE" not in vars(cls):
            continue  # an abstract intermediate class
        key = (cls.TYPE, cls.VERSION)
        other = found.setdefault(key, cls)
        if other is not cls:
            raise ValueError(f"Two contracts for {key}: {other.__qualname__} and {cls.__qualname__}")
    return dict(sorted(found.items()))


def message_key(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _describe(cls: type[BaseModel]) -> str:
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split()) if doc and "TYPE" in vars(cls) else ""


def build(topic: str = DEFAULT_TOPIC) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict (deterministic for a given code base)."""
    contracts = all_contracts()
    _, defs = models_json_schema(
        [(Envelope, "serialization"), *((c, "serialization") for c in contracts.values())],
        ref_template=SCHEMA_REF,
    )
    schemas: dict[str, Any] = dict(sorted(defs.get("$defs", {}).items()))
    envelope = schemas.pop("Envelope")
    messages: dict[str, Any] = {}
    for (event_type, version), cls in contracts.items():
        key = message_key(event_type, version)
        payload_name = schemas_name(schemas, cls)
        env = copy.deepcopy(envelope)
        env["title"] = f"Envelope of {event_type} v{version}"
        props = env["properties"]
        props["type"] = {**props["type"], "const": event_type}
        props["version"] = {**props["version"], "const": version}
        props["aggregate_type"] = {**props["aggregate_type"], "const": "event"}
        props["payload"] = {
            "$ref": SCHEMA_REF.format(model=payload_name),
            "description": f"The {event_type} v{version} contract.",
        }
        schemas[f"{key}.envelope"] = env
        message: dict[str, Any] = {
            "name": event_type,
            "title": f"{event_type} v{version}",
            "summary": _describe(cls) or f"The {event_type} domain event, version {version}.",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "description": "Kafka record headers (UTF-8 text values).",
                "properties": {
                    "type": {"type": "string", "const": event_type, "description": "The envelope's type."},
                    "version": {
                        "type": "string",
                        "const": str(version),
                        "description": "The envelope's contract version, as decimal text.",
                    },
                },
                "required": ["type", "version"],
            },
            "payload": {"$ref": SCHEMA_REF.format(model=f"{key}.envelope")},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "pattern": "^[0-9]+$",
                        "description": "The ticketing event's id (the envelope's aggregate_id) as "
                        "decimal text: one event's stream stays on one partition, in sequence order.",
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        messages[key] = message
    refs = {key: {"$ref": f"#/components/messages/{key}"} for key in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "admitone domain events",
            "version": __version__,
            "description": (
                "The domain events of every ticketing event, as the stream relay writes them to Kafka "
                "from the transactional outbox. Delivery is at least once: deduplicate on the envelope's "
                "`id`, or keep the last applied `sequence` per `aggregate_id` (sequences are gap-free "
                "from 1 per ticketing event). A new contract version is a new message; old versions "
                "stay readable."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Any Kafka-protocol broker; configured with ADMITONE_KAFKA_BOOTSTRAP_SERVERS.",
            }
        },
        "channels": {
            "domainEvents": {
                "address": topic,
                "title": "Domain events",
                "description": "One topic for all domain events, keyed by ticketing event id.",
                "servers": [{"$ref": "#/servers/kafka"}],
                "messages": refs,
            }
        },
        "operations": {
            "publishDomainEvents": {
                "action": "send",
                "title": "The stream relay publishes committed domain events",
                "channel": {"$ref": "#/channels/domainEvents"},
                "messages": [{"$ref": f"#/channels/domainEvents/messages/{key}"} for key in messages],
            }
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def schemas_name(schemas: dict[str, Any], cls: type[BaseModel]) -> str:
    """The component name pydantic gave ``cls`` (its class name unless two models share one)."""
    if cls.__name__ in schemas:
        return cls.__name__
    for name in schemas:
        if name.endswith("__" + cls.__name__):
            return name
    raise KeyError(f"No schema generated for {cls.__qualname__}")


def render(topic: str = DEFAULT_TOPIC) -> str:
    """The document as the text committed in ``docs/asyncapi.json``."""
    return json.dumps(build(topic), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _rendered(topic: str) -> bytes:
    return render(topic).encode()


async def asyncapi_document(state: StateDep) -> Response:
    """The AsyncAPI 3.0 document of the domain-event topic (served at ``/asyncapi.json``), with the
    topic this deployment writes to."""
    return Response(_rendered(state.settings.kafka_topic), media_type="application/json")
