"""The OpenAPI document is complete: it is what client generators and API users read.

Every schema describes every field and carries an example that the model itself accepts; every operation
has a tag, a description, a clean unique operation id, and documents its errors as problem details
(``application/problem+json``).
Each test prints the full list of offenders so a failure says what to fix.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from admitone.core.app import create_app
from admitone.core.errors import PROBLEM_JSON
from admitone.core.settings import Settings
from tests.conftest import base_settings

PROBLEM_REF = "#/components/schemas/Problem"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # The document does not depend on the database: the app is built but never started.
    return create_app(Settings(**base_settings())).openapi()  # type: ignore[arg-type]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def admitone_models() -> dict[str, type[BaseModel]]:
    """Every Pydantic model defined by admitone, by class name (the name FastAPI gives its schema)."""
    found: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if cls.__module__.startswith("admitone.") and cls.__module__ in sys.modules:
                found.setdefault(cls.__name__, cls)
    return found


def model_for(name: str, models: dict[str, type[BaseModel]]) -> type[BaseModel] | None:
    # FastAPI names the two variants of a model that differs between input and output "X-Input"/"X-Output".
    return models.get(re.sub(r"-(Input|Output)$", "", name))


def has_examples(node: dict[str, Any]) -> bool:
    return bool(node.get("examples")) or "example" in node


def test_the_document_has_schemas_and_operations(document: dict[str, Any]) -> None:
    assert len(document["components"]["schemas"]) > 40
    assert len(operations(document)) > 40
    assert document["info"]["title"] == "admitone"


def test_every_property_has_a_description(document: dict[str, Any]) -> None:
    offenders = [
        f"{name}.{prop}"
        for name, schema in document["components"]["schemas"].items()
        for prop, node in schema.get("properties", {}).items()
        if not str(node.get("description", "")).strip()
    ]
    assert not offenders, f"{len(offenders)} properties without a description:\n" + "\n".join(offenders)


def test_every_schema_has_an_example(document: dict[str, Any]) -> None:
    offenders = []
    for name, schema in document["components"]["schemas"].items():
        if "enum" in schema:
            continue  # an enumeration lists every value it can take: that is its example
        props = schema.get("properties", {})
        if has_examples(schema):
            continue
        missing = [prop for prop, node in props.items() if not has_examples(node)]
        if missing or not props:
            offenders.append(f"{name}: no model example, and none on {', '.join(missing) or 'the schema'}")
    assert not offenders, f"{len(offenders)} schemas without an example:\n" + "\n".join(offenders)


def test_examples_are_accepted_by_their_models(document: dict[str, Any]) -> None:
    """A model-level example must validate as it is; property-level examples, put together, must too."""
    models = admitone_models()
    offenders = []
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        if "enum" in schema:
            continue
        model = model_for(name, models)
        if model is None:
            offenders.append(f"{name}: no admitone model of that name")
            continue
        # The model's own schema, not the served document: FastAPI drops null members from objects when it
        # renders the document, so `"paid_at": null` would read as a missing field there.
        own = model.model_json_schema()
        if has_examples(own):
            examples = own.get("examples") or [own.get("example")]
        else:
            props = own.get("properties", {})
            examples = [{prop: node["examples"][0] for prop, node in props.items() if node.get("examples")}]
        for example in examples:
            try:
                model.model_validate(example)
                checked += 1
            except ValidationError as exc:
                offenders.append(f"{name}: example {example!r} is refused: {exc}")
    assert not offenders, f"{len(offenders)} examples do not match their models:\n" + "\n".join(offenders)
    assert checked >= len(document["components"]["schemas"]) - 10


def test_no_framework_validation_schema_is_documented(document: dict[str, Any]) -> None:
    """Validation errors are rendered as problem details, so FastAPI's own error shapes must not appear."""
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert "Problem" in schemas


def test_every_operation_has_a_tag_a_description_and_a_clean_unique_id(document: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in document.get("tags", [])}
    offenders = []
    seen: dict[str, str] = {}
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        tags = operation.get("tags") or []
        if not tags:
            offenders.append(f"{where}: no tag")
        offenders += [f"{where}: tag {tag!r} is not declared in TAGS" for tag in tags if tag not in declared]
        if not str(operation.get("summary", "")).strip():
            offenders.append(f"{where}: no summary")
        if not str(operation.get("description", "")).strip():
            offenders.append(f"{where}: no description (the endpoint's docstring)")
        op_id = operation.get("operationId", "")
        if not SNAKE_CASE.match(op_id):
            offenders.append(f"{where}: operationId {op_id!r} is not snake_case")
        if op_id in seen:
            offenders.append(f"{where}: operationId {op_id!r} is also used by {seen[op_id]}")
        seen[op_id] = where
    assert not offenders, f"{len(offenders)} operation problems:\n" + "\n".join(offenders)


def test_errors_are_documented_as_problem_details(document: dict[str, Any]) -> None:
    """Every documented error is problem+json only, and each operation documents the errors it can answer:
    422 when it takes input, 401 when it needs an API key, 404 when its path names a resource."""
    offenders = []
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        responses = operation.get("responses", {})
        for code, response in responses.items():
            if not (code[0] in "45" or code == "default"):
                continue
            content = response.get("content", {})
            if set(content) != {PROBLEM_JSON}:
                offenders.append(f"{where} {code}: content types {sorted(content)}, want only {PROBLEM_JSON}")
            elif content[PROBLEM_JSON].get("schema", {}).get("$ref") != PROBLEM_REF:
                offenders.append(f"{where} {code}: {PROBLEM_JSON} does not use the Problem schema")
            if not str(response.get("description", "")).strip():
                offenders.append(f"{where} {code}: no description")
        if (operation.get("parameters") or operation.get("requestBody")) and "422" not in responses:
            offenders.append(f"{where}: takes input but does not document 422")
        if operation.get("security") and "401" not in responses:
            offenders.append(f"{where}: needs an API key but does not document 401")
        if "{" in path and "404" not in responses:
            offenders.append(f"{where}: names a resource but does not document 404")
    assert not offenders, f"{len(offenders)} error documentation problems:\n" + "\n".join(offenders)


def test_problem_example_is_an_error_the_server_renders(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    example = problem["examples"][0]
    assert example["status"] in (400, 401, 403, 404, 409, 410, 413, 422, 429, 503)
    assert example["type"].startswith("https://admitone.dev/problems/")


def test_every_parameter_has_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path} {parameter['in']} {parameter['name']}"
        for path, method, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert missing == [], "parameters without a description:\n" + "\n".join(missing)
