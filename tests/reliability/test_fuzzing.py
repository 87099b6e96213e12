"""API fuzzing: schemathesis against the platform's own OpenAPI schema (as /api/schema/ serves it), every operation
x every role (and anonymous), in-process through the WSGI application on a seeded database.

Each generated request (schema-valid and schema-invalid bodies, queries and headers; path ids of the seeded objects
or random ones) must answer without a 5xx, with a status code the operation documents, the documented content type
and headers, and a body that matches the documented schema; invalid input must be refused (4xx).
Bounded and seeded (derandomized) in `make test`; more examples per operation under `make reliability`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.attack_world import ROLES, World, in_process_requests, seeded_id, seeded_world
from tests.reliability.figures import full_mode, record_figure

EXAMPLES = 25 if full_mode() else 2
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

APP = WSGIHandler()


def _load_schema() -> Any:
    with in_process_requests():
        return schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)


SCHEMA = _load_schema()
OPERATIONS = {operation.label: operation for operation in (result.ok() for result in SCHEMA.get_all_operations())}
TRIED: dict[str, int] = {"requests": 0, "5xx": 0, "accepted": 0}


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with seeded_world(django_db_blocker, tmp_path_factory.mktemp("fuzz-media")) as built:
        yield built
    record_figure("fuzzing", "operations", len(OPERATIONS))
    record_figure("fuzzing", "operations x roles", len(OPERATIONS) * len(ROLES))
    record_figure("fuzzing", "requests sent", TRIED["requests"])
    record_figure("fuzzing", "5xx", TRIED["5xx"])
    record_figure("fuzzing", "schema-violating requests accepted", TRIED["accepted"])


@pytest.fixture(autouse=True)
def _media_in_tmp() -> None:
    """The seeded world's images stay where they were stored (replaces the suite's per-test media folder)."""


def _strategy(operation: Any, world: World) -> Any:
    modes = [GenerationMode.POSITIVE]
    if operation.body or any(True for _ in operation.iter_parameters()):
        modes.append(GenerationMode.NEGATIVE)
    strategies = []
    for mode in modes:
        strategies.append(operation.as_strategy(generation_mode=mode))
        if "{id}" in operation.path:
            seeded = {"id": seeded_id(world, operation.path)}
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=seeded))
    return st.one_of(strategies)


def _fuzz_as(role: str, headers: dict[str, str], strategy: Any) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        response = case.call(app=APP, headers=headers)
        TRIED["requests"] += 1
        if response.status_code >= 500:
            TRIED["5xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, FailureGroup) as failure:
            found = failure.exceptions if isinstance(failure, FailureGroup) else (failure,)
            TRIED["accepted"] += any(isinstance(each, AcceptedNegativeData) for each in found)
            failure.add_note(f"(sent as {role})")
            raise

    fuzz()


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_as_documented_to_every_role(label: str, world: World, db: None) -> None:
    strategy = _strategy(OPERATIONS[label], world)
    for role in ROLES:
        _fuzz_as(role, world.headers(role), strategy)


# --- explicit examples: integers the database cannot hold, booleans where the schema says integer -------------------
# Found by fuzzing at full size (issue 21): `?field=<31 digits>` and `review-queue?case=...` answered 500 (OverflowError
# on SQLite), `{"version": true}` submitted a set. Every integer input of every operation (path, query, JSON body,
# arrays of integers) gets each value below, as every role, in `make test` too; each must be refused with a 4xx.
HOSTILE_INTEGERS: tuple[Any, ...] = (
    True,
    2**63,
    *((False, -(2**63) - 1, 7131503448619593729522381357056) * full_mode()),
)
OTHER_PATH_VALUES = {"name": "loss.png"}


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMA.raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _is_integer(schema: dict[str, Any]) -> bool:
    return _resolved(schema).get("type") == "integer"


def integer_inputs(operation: Any) -> list[tuple[str, str, bool]]:
    """(location, name, is an array) of every integer input the schema documents for the operation."""
    found = []
    for parameter in operation.definition.raw.get("parameters", []):
        if parameter["in"] in ("path", "query") and _is_integer(parameter.get("schema", {})):
            found.append((parameter["in"], parameter["name"], False))
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _resolved(content["application/json"]["schema"])
        for name, prop in body.get("properties", {}).items():
            prop = _resolved(prop)
            if prop.get("readOnly"):
                continue
            if _is_integer(prop):
                found.append(("body", name, False))
            elif prop.get("type") == "array" and _is_integer(prop.get("items", {})):
                found.append(("body", name, True))
    return found


INTEGER_INPUTS = {label: inputs for label, operation in OPERATIONS.items() if (inputs := integer_inputs(operation))}


def _hostile_case(operation: Any, world: World, location: str, name: str, value: Any) -> Any:
    path_parameters = {
        parameter["name"]: seeded_id(world, operation.path)
        if parameter["name"] == "id"
        else OTHER_PATH_VALUES.get(parameter["name"], "1")
        for parameter in operation.definition.raw.get("parameters", [])
        if parameter["in"] == "path"
    }
    text = str(value).lower() if isinstance(value, bool) else str(value)
    query: dict[str, Any] = {}
    body: dict[str, Any] = {}
    if location == "path":
        path_parameters[name] = text
    elif location == "query":
        query[name] = text
    else:
        body[name] = value
    if "requestBody" in operation.definition.raw and "application/json" in operation.definition.raw["requestBody"].get(
        "content", {}
    ):
        return operation.Case(path_parameters=path_parameters, query=query, body=body, media_type="application/json")
    return operation.Case(path_parameters=path_parameters, query=query)


@pytest.mark.parametrize("label", sorted(INTEGER_INPUTS))
def test_integer_inputs_refuse_booleans_and_values_past_the_database(label: str, world: World, db: None) -> None:
    operation = OPERATIONS[label]
    for location, name, many in INTEGER_INPUTS[label]:
        for value in HOSTILE_INTEGERS:
            case = _hostile_case(operation, world, location, name, [value] if many else value)
            for role in ROLES:
                response = case.call(app=APP, headers=world.headers(role))
                TRIED["requests"] += 1
                TRIED["5xx"] += response.status_code >= 500
                sent = f"{label} {location} {name}={value!r} as {role}"
                assert 400 <= response.status_code < 500, (sent, response.status_code, response.content[:300])


def test_the_hostile_integer_examples_cover_the_inputs_of_issue_21() -> None:
    assert ("query", "field", False) in INTEGER_INPUTS["GET /api/v1/cells/"]
    assert ("query", "case", False) in INTEGER_INPUTS["GET /api/v1/review-queue"]
    assert ("body", "version", False) in INTEGER_INPUTS["POST /api/v1/annotation-sets/{id}/submit/"]
    assert len(INTEGER_INPUTS) >= 75


def test_the_schema_documents_every_api_route() -> None:
    """Fuzzing covers what the schema lists; the schema must list every route (the permission matrix lists them
    too), and every operation documents its error answers in the shared shape."""
    assert len(OPERATIONS) >= 75
    for operation in OPERATIONS.values():
        if operation.path == "/api/v1/health":
            continue
        documented = set(operation.definition.raw["responses"])
        assert {"401", "503"} <= documented, (operation.label, documented)
