"""schemathesis over every operation of the OpenAPI document, as the owner with real ids and as a stranger with
the owner's ids: no server error, and every answer matches the documented status codes and schemas."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PICOS
from tests.support.screening import models_configured, seed_results, start

pytestmark = pytest.mark.slow
EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def real_ids(app, client, auth, monkeypatch) -> dict[str, int]:
    models_configured(app, monkeypatch)
    project = client.post("/api/v1/asl/projects", json={"name": "p", "picos": PICOS}, headers=auth).get_json()
    records = [{"title": f"Nudges trial {i}", "abstract": "Doctors and defaults.", "year": 2020} for i in range(5)]
    client.post(f"/api/v1/asl/projects/{project['id']}/literatures", json={"records": records}, headers=auth)
    task = start(client, auth, project["id"], batch_size=10).get_json()
    result_ids = seed_results(app, task["id"])
    return {"project_id": project["id"], "task_id": task["id"], "result_id": result_ids[0]}


def run_every_operation(app, headers: dict[str, str], ids: dict[str, int]) -> tuple[list[str], dict[str, set]]:
    """Failures per operation, and the statuses each operation answered."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: list[str] = []
    seen: dict[str, set] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # deleting the project with the real id ends every other operation's data: run deletes last
    for operation in sorted(operations, key=lambda op: op.method.lower() == "delete"):

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            for name in list(case.path_parameters or {}):
                if name in ids:
                    case.path_parameters[name] = ids[name]
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            check()
        except BaseException as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:300]}")
    return failures, seen


def test_schemathesis_as_the_owner_with_real_ids(app, auth, real_ids) -> None:
    failures, seen = run_every_operation(app, auth, real_ids)
    assert failures == []
    assert len(seen) >= 20  # every operation was called
    assert 200 in seen["GET /api/v1/asl/tasks/{task_id}"] and 200 in seen["GET /api/v1/asl/projects/{project_id}"]
    assert seen["GET /api/v1/cache/stats"] == {403}  # alice is no admin


def test_schemathesis_as_a_stranger(app, make_token, real_ids) -> None:
    stranger = {"Authorization": f"Bearer {make_token('mallory')}"}
    failures, seen = run_every_operation(app, stranger, real_ids)
    assert failures == []
    for label, statuses in seen.items():
        if "{" in label:
            assert statuses <= {400, 404, 413, 415, 422}, (label, statuses)  # never the owner's data
