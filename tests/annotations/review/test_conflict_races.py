"""Two people deciding one conflict at the same moment: one wins, the other gets 409, nothing is half-written.

The requests run in two threads against the live test database (committed data, one connection per thread), so
the field and conflict row locks of `review.services.conflict_resolve` are what keeps them apart on PostgreSQL; on
SQLite (a file, as the demo runs it) the write lock each transaction takes when it begins does.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from aicell.roles import Role
from annotations.models import AuditEvent, Conflict
from tests.conftest import token_client
from tests.factories import reviewed_field

BOX = {"x": 10, "y": 20, "width": 50, "height": 40}


def post_together(requests: dict[str, tuple[Any, str, dict[str, Any]]]) -> dict[str, Any]:
    """Send the requests from one thread each, released at the same instant; {name: response}."""
    barrier = threading.Barrier(len(requests))
    responses: dict[str, Any] = {}

    def send(name: str, client: Any, path: str, body: dict[str, Any]) -> None:
        try:
            barrier.wait(timeout=10)
            responses[name] = client.post(path, body, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(name, *request)) for name, request in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_resolves_of_one_conflict_one_wins_the_other_gets_409(
    committed_db: None, make_user: Any
) -> None:
    annotator, second_annotator = make_user(Role.ANNOTATOR), make_user(Role.ANNOTATOR)
    field = reviewed_field(annotator, second_annotator, [{**BOX, "cell_class_id": 11}], [{**BOX, "cell_class_id": 0}])
    conflict = Conflict.objects.get(field=field)
    path = f"/api/v1/conflicts/{conflict.pk}/resolve"
    # Both concede at once, in opposite directions: only one of the two can be the outcome.
    responses = post_together(
        {
            "a": (token_client(annotator), path, {"decision": "concede", "version": 1}),
            "b": (token_client(second_annotator), path, {"decision": "concede", "version": 1}),
        }
    )

    statuses = {name: response.status_code for name, response in responses.items()}
    assert sorted(statuses.values()) == [200, 409], {n: r.json() for n, r in responses.items()}
    winner = next(name for name, status in statuses.items() if status == 200)
    loser = "b" if winner == "a" else "a"
    assert responses[loser].json()["current"]["status"] == "resolved"
    conflict.refresh_from_db()
    assert conflict.version == 2
    assert conflict.resolution == loser  # the winner conceded: the other side's version stands
    assert (conflict.decision_a, conflict.decision_b) == (("concede", "") if winner == "a" else ("", "concede"))
    assert AuditEvent.objects.filter(entity="conflict", entity_id=conflict.pk).count() == 1
    field.refresh_from_db()
    assert field.status == "consensus"
    assert field.annotation_sets.filter(kind="consensus").count() == 1
