"""Reviewers asking for the queue at the same moment, in real concurrent requests (threads, each with its own
database connection; PostgreSQL in CI): a queued cell is never held by more than two reviewers, so a third reviewer
racing for a cell two others hold or take never gets it."""

import threading
from typing import Any

import pytest
from django.db import connection

from aicell.roles import Role
from inference.models import ReviewClaim
from tests.factories import FieldFactory, ModelVersionFactory
from tests.inference.test_review_queue_api import predicted

RACERS = 4
ROUNDS = 5


def race(clients: list[Any]) -> list[list[int]]:
    """Every client asks for one cell at the same moment; the cells each got."""
    barrier = threading.Barrier(len(clients))
    got: list[list[int]] = [[] for _ in clients]
    errors: list[BaseException] = []

    def ask(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            response = clients[index].get("/api/v1/review-queue", {"limit": 1})
            assert response.status_code == 200, response.content
            got[index] = [cell["id"] for cell in response.json()["cells"]]
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return got


# The module-level mark of other review tests is plain django_db; these need committed rows (other connections).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_racing_reviewers_never_hold_a_cell_three_times(committed_db: None, client_for: Any, make_user: Any) -> None:
    classifier = ModelVersionFactory(stage="classifier", status="active")
    holder = make_user(Role.ANNOTATOR)
    for _ in range(ROUNDS):
        (cell,) = predicted(FieldFactory(), classifier, [{"entropy": 2.0}])
        # One reviewer holds the cell's first seat; the racers compete for the second at the same moment.
        assert [c["id"] for c in client_for(holder).get("/api/v1/review-queue", {"limit": 1}).json()["cells"]] == [
            cell.pk
        ]
        racers = [make_user(Role.ANNOTATOR) for _ in range(RACERS)]
        got = race([client_for(racer) for racer in racers])
        assert sum(ids == [cell.pk] for ids in got) == 1, got
        assert ReviewClaim.objects.filter(cell=cell).count() == 2
        # A reviewer asking after the race does not get it either.
        late = make_user(Role.ANNOTATOR)
        assert client_for(late).get("/api/v1/review-queue", {"limit": 1}).json()["cells"] == []
        # Free the seats for the next round's cell (the holder's claim is released as they leave).
        ReviewClaim.objects.all().delete()
        cell.delete()
