"""The AsyncAPI document of the domain-event topic: committed copy, coverage of every contract, and real
envelopes written by the app validated against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import sqlalchemy as sa

from admitone.chat import schemas as chat_schemas
from admitone.core.clock import ManualClock
from admitone.core.settings import Settings
from admitone.outbox.asyncapi import all_contracts, build, message_key, render
from admitone.outbox.contracts import CONTRACTS, DomainEvent
from admitone.outbox.models import outbox
from admitone.outbox.relay import envelope_of
from tests.harness import Harness

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "asyncapi.json"
REGENERATE = "regenerate it with `admitone asyncapi --output docs/asyncapi.json`"

CHAT_CONTRACTS = [
    obj
    for obj in vars(chat_schemas).values()
    if isinstance(obj, type) and issubclass(obj, DomainEvent) and obj is not DomainEvent
]


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def validator(doc: dict[str, Any], ref: str) -> Any:
    return jsonschema_rs.validator_for({**doc, "$ref": ref})


def test_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.exists(), f"docs/asyncapi.json is missing; {REGENERATE}"
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed == render(), f"docs/asyncapi.json differs from the contracts; {REGENERATE}"


def test_cli_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    argv = [str(Path(sys.executable).parent / "admitone"), "asyncapi", "--output", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == render()
    printed = subprocess.run(argv[:2], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == build()


def test_every_contract_has_a_message_with_its_schema() -> None:
    doc = build()
    assert doc["asyncapi"] == "3.0.0"
    assert len(CHAT_CONTRACTS) >= 6  # the chat contracts are found, not only outbox/contracts.py
    expected = {*CONTRACTS.values(), *CHAT_CONTRACTS}
    assert set(all_contracts().values()) == expected
    channel = doc["channels"]["domainEvents"]
    operation_refs = {m["$ref"] for m in doc["operations"]["publishDomainEvents"]["messages"]}
    for cls in expected:
        key = message_key(cls.TYPE, cls.VERSION)
        assert key in channel["messages"], f"{cls.__name__} has no message on the topic"
        assert f"#/channels/domainEvents/messages/{key}" in operation_refs
        message = resolve(doc, channel["messages"][key]["$ref"])
        assert message["name"] == cls.TYPE
        assert message["headers"]["properties"]["type"]["const"] == cls.TYPE
        assert message["headers"]["properties"]["version"]["const"] == str(cls.VERSION)
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        envelope = resolve(doc, message["payload"]["$ref"])
        assert envelope["properties"]["type"]["const"] == cls.TYPE
        assert envelope["properties"]["version"]["const"] == cls.VERSION
        assert set(envelope["required"]) >= {"id", "type", "version", "aggregate_id", "sequence", "payload"}
        payload = resolve(doc, envelope["properties"]["payload"]["$ref"])
        fields = set(cls.model_fields)
        assert set(payload["properties"]) == fields, cls.__name__
        assert "event_id" in payload["required"]


def test_every_reference_resolves() -> None:
    doc = build()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    refs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert len(refs) > 50
    for ref in refs:
        resolve(doc, ref)


def test_schema_rejects_a_payload_of_another_contract() -> None:
    doc = build()
    placed = validator(doc, "#/components/schemas/hold.placed.v1.envelope")
    envelope = {
        "id": "3f1c2a8e-0000-4000-8000-000000000001",
        "type": "hold.placed",
        "version": 1,
        "aggregate_type": "event",
        "aggregate_id": 7,
        "sequence": 1,
        "occurred_at": "2030-01-01T10:00:00Z",
        "payload": {"event_id": 7, "hold_id": "h1"},  # a hold.released payload
    }
    assert not placed.is_valid(envelope)
    released = validator(doc, "#/components/schemas/hold.released.v1.envelope")
    assert released.is_valid({**envelope, "type": "hold.released"})
    assert not released.is_valid(envelope)  # type fixed to the contract's


async def test_envelopes_written_by_the_app_match_their_messages(harness: Harness) -> None:
    auth = await harness.organizer()
    ga = await harness.ga_event(auth)
    await harness.sell(ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 2}]})
    released = await harness.hold(
        ga.event_id, {"tickets": [{"ticket_type_id": ga.ticket_type_id, "quantity": 1}]}
    )
    assert released.status_code == 201, released.text
    r = await harness.client.delete(f"/api/v1/holds/{released.json()['id']}")
    assert r.status_code in (200, 204), r.text
    async with harness.state.db.read() as conn:
        rows = list((await conn.execute(sa.select(outbox).order_by(outbox.c.id))).all())
    doc = build()
    seen: set[str] = set()
    for row in rows:
        env = envelope_of(row)
        wire = json.loads(env.model_dump_json())
        key = message_key(env.type, env.version)
        assert key in doc["components"]["messages"], key
        check = validator(doc, doc["components"]["messages"][key]["payload"]["$ref"])
        errors = [str(e) for e in check.iter_errors(wire)]
        assert not errors, (key, errors, wire)
        seen.add(env.type)
    assert {"hold.placed", "inventory.changed", "order.placed", "order.paid", "ticket.issued"} <= seen
    assert "hold.released" in seen


async def test_served_at_asyncapi_json(harness: Harness) -> None:
    r = await harness.client.get("/asyncapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == build()


@pytest.mark.parametrize("cls", sorted(CONTRACTS.values(), key=lambda c: c.TYPE), ids=lambda c: c.TYPE)
def test_contract_schema_is_pydantics(cls: type[DomainEvent]) -> None:
    doc = build()
    envelope = doc["components"]["schemas"][f"{message_key(cls.TYPE, cls.VERSION)}.envelope"]
    payload = resolve(doc, envelope["properties"]["payload"]["$ref"])
    own = cls.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    own.pop("$defs", None)
    assert payload == own


async def test_served_document_names_the_configured_topic(settings: Settings) -> None:
    from admitone.core.app import create_app

    custom = settings.model_copy(update={"kafka_topic": "shop.domain-events"})
    app = create_app(custom, ManualClock(), self_transport=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            r = await client.get("/asyncapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["channels"]["domainEvents"]["address"] == "shop.domain-events"
    assert doc == build("shop.domain-events")
    assert build()["channels"]["domainEvents"]["address"] == Settings.model_fields["kafka_topic"].default
