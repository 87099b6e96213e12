"""Blind double review: until both annotators of a field have submitted, neither can learn anything about the
other's annotation set through any read endpoint, filter, count or history; a hidden set answers exactly like
one that does not exist. Afterwards both see everything of the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotations.models import ReviewSettings
from tests.annotations.review.review_api import annotate, assign, box, submit
from tests.factories import FieldFactory, prediction_set

pytestmark = pytest.mark.django_db

NO_SUCH_ID = 987654


@dataclass
class Pair:
    field: int
    prediction_set: int
    prediction_cell: int
    clients: dict[str, APIClient]
    users: dict[str, Any]
    sets: dict[str, int]
    versions: dict[str, int]
    cells: dict[str, list[int]]

    def submit(self, side: str) -> None:
        submit(self.clients[side], self.sets[side], self.versions[side])


@pytest.fixture
def pair(client_for: Any, annotator: Any, second_annotator: Any, lab_admin: Any) -> Pair:
    field = FieldFactory()
    predictions = prediction_set(field, [{"x": 300, "y": 300, "cell_class_id": 11}])
    admin = client_for(lab_admin)
    users = {"a": annotator, "b": second_annotator}
    clients = {side: client_for(user) for side, user in users.items()}
    for user in users.values():
        assign(admin, field.pk, user)
    sets, versions, cells = {}, {}, {}
    for side, boxes in (("a", [box(10, 10)]), ("b", [box(10, 10, cell_class=12), box(200, 200)])):
        sets[side], versions[side], cells[side] = annotate(clients[side], field.pk, boxes)
    return Pair(field.pk, predictions.pk, predictions.cells.get().pk, clients, users, sets, versions, cells)


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.json()
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    if isinstance(body, dict):
        assert body["count"] == len(rows)  # the count is of what the reader may see
    return {row["id"] for row in rows}


def assert_other_set_hidden(pair: Pair, reader: str, other: str) -> None:
    client = pair.clients[reader]
    hidden_set, hidden_cells = pair.sets[other], pair.cells[other]
    own = {pair.sets[reader], pair.prediction_set}

    # Lists and every filter of annotation sets.
    assert hidden_set not in ids(client.get("/api/v1/annotation-sets"))
    assert ids(client.get(f"/api/v1/annotation-sets?field={pair.field}")) == own
    assert ids(client.get("/api/v1/annotation-sets?kind=annotator")) == {pair.sets[reader]}
    assert ids(client.get(f"/api/v1/annotation-sets?annotator={pair.users[other].pk}")) == set()
    own_row = client.get(f"/api/v1/annotation-sets/{pair.sets[reader]}").json()
    assert own_row["cell_count"] == len(pair.cells[reader])

    # Details answer exactly like ids that do not exist.
    for path in ("/api/v1/annotation-sets/{}", "/api/v1/annotation-sets/{}/cells", "/api/v1/cells/{}"):
        target = hidden_cells[0] if path.startswith("/api/v1/cells") else hidden_set
        hidden, absent = client.get(path.format(target)), client.get(path.format(NO_SUCH_ID))
        assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json()) == (404, absent.json())

    # Cells: lists and filters.
    assert ids(client.get(f"/api/v1/cells?field={pair.field}")) == set(pair.cells[reader]) | {pair.prediction_cell}
    assert ids(client.get("/api/v1/cells?kind=annotator")) == set(pair.cells[reader])
    by_hidden = client.get(f"/api/v1/cells?annotation_set={hidden_set}")
    by_absent = client.get(f"/api/v1/cells?annotation_set={NO_SUCH_ID}")
    assert (by_hidden.status_code, by_hidden.json()) == (by_absent.status_code, by_absent.json())
    assert by_hidden.json()["count"] == 0

    # Writes that would probe the other set answer 404 as well.
    probes = [
        client.patch(f"/api/v1/cells/{hidden_cells[0]}", {"x": 1, "version": 1}, format="json"),
        client.delete(f"/api/v1/cells/{hidden_cells[0]}?version=1"),
        client.post(f"/api/v1/annotation-sets/{hidden_set}/cells", {**box(1, 1), "version": 1}, format="json"),
        client.post(f"/api/v1/annotation-sets/{hidden_set}/submit", {"version": 1}, format="json"),
        client.post(f"/api/v1/annotation-sets/{hidden_set}/accept", {"all": True, "version": 1}, format="json"),
    ]
    assert [probe.status_code for probe in probes] == [404] * len(probes)

    # The other annotator's assignment shows no set id, cell count or time; the own one does.
    rows = {row["annotator"]: row for row in client.get(f"/api/v1/assignments?field={pair.field}").json()["results"]}
    theirs, mine = rows[pair.users[other].pk], rows[pair.users[reader].pk]
    assert theirs["progress"] in ("pending", "submitted")
    assert (theirs["annotation_set"], theirs["cell_count"], theirs["submitted_at"]) == (None, None, None)
    assert (mine["annotation_set"], mine["cell_count"]) == (pair.sets[reader], len(pair.cells[reader]))

    # No cross-check, consensus or agreement exists yet; the history shows nothing of the other's work.
    assert client.get(f"/api/v1/fields/{pair.field}/conflicts").status_code == 404
    assert client.get(f"/api/v1/conflicts?field={pair.field}").json()["count"] == 0
    assert client.get(f"/api/v1/fields/{pair.field}/consensus").status_code == 404
    assert client.get(f"/api/v1/agreement?field={pair.field}").json()["n_fields"] == 0
    history = client.get(f"/api/v1/fields/{pair.field}/history?page_size=100").json()
    assert history["count"] == len(history["results"])
    assert {event["annotation_set_id"] for event in history["results"]} == {None, pair.sets[reader]}
    assert pair.users[other].pk not in {event["actor"] for event in history["results"]}


@pytest.mark.parametrize("reader", ["a", "b"])
@pytest.mark.parametrize("submitted", [(), ("reader",), ("other",)], ids=["drafting", "reader-done", "other-done"])
def test_the_other_annotators_set_does_not_exist_for_a_reader_before_both_submitted(
    pair: Pair, reader: str, submitted: tuple[str, ...]
) -> None:
    other = "b" if reader == "a" else "a"
    for role in submitted:
        pair.submit(reader if role == "reader" else other)
    assert_other_set_hidden(pair, reader, other)


def test_a_hidden_cell_cannot_be_probed_as_a_source_cell(pair: Pair) -> None:
    client = pair.clients["a"]
    answers = [
        client.post(
            f"/api/v1/annotation-sets/{pair.sets['a']}/cells",
            {**box(400, 10), "source_cell": source, "version": pair.versions["a"]},
            format="json",
        )
        for source in (pair.cells["b"][0], NO_SUCH_ID)
    ]
    assert [answer.status_code for answer in answers] == [400, 400]
    details = [
        answer.json()["detail"].replace(str(source), "N")
        for answer, source in zip(answers, (pair.cells["b"][0], NO_SUCH_ID), strict=True)
    ]
    assert details[0] == details[1]


def test_after_both_submitted_each_sees_the_others_set_everywhere(pair: Pair) -> None:
    pair.submit("a")
    pair.submit("b")
    client = pair.clients["a"]

    assert client.get(f"/api/v1/annotation-sets/{pair.sets['b']}").json()["cell_count"] == 2
    assert ids(client.get(f"/api/v1/annotation-sets/{pair.sets['b']}/cells")) == set(pair.cells["b"])
    assert ids(client.get(f"/api/v1/cells?annotation_set={pair.sets['b']}")) == set(pair.cells["b"])
    theirs = client.get(f"/api/v1/assignments?field={pair.field}&annotator={pair.users['b'].pk}").json()["results"][0]
    assert (theirs["progress"], theirs["annotation_set"], theirs["cell_count"]) == ("submitted", pair.sets["b"], 2)
    history = client.get(f"/api/v1/fields/{pair.field}/history?page_size=100").json()["results"]
    assert pair.sets["b"] in {event["annotation_set_id"] for event in history}
    assert client.get(f"/api/v1/fields/{pair.field}/conflicts").status_code == 200
    assert client.get(f"/api/v1/agreement?field={pair.field}").json()["n_fields"] == 1
    # Still their set: writing to it is refused with the reason, not hidden.
    refused = client.patch(f"/api/v1/cells/{pair.cells['b'][0]}", {"x": 1, "version": 1}, format="json")
    assert refused.status_code == 403
    assert "another annotator" in refused.json()["detail"]


def test_an_annotator_of_other_fields_never_sees_the_pairs_sets(pair: Pair, make_user: Any, client_for: Any) -> None:
    from aicell.roles import Role

    pair.submit("a")
    pair.submit("b")
    outsider = client_for(make_user(Role.ANNOTATOR))

    for side in ("a", "b"):
        assert outsider.get(f"/api/v1/annotation-sets/{pair.sets[side]}").status_code == 404
    assert outsider.get(f"/api/v1/fields/{pair.field}/conflicts").status_code == 404
    assert outsider.get(f"/api/v1/assignments?field={pair.field}").json()["count"] == 0
    assert outsider.get(f"/api/v1/agreement?field={pair.field}").json()["n_fields"] == 0
    history = outsider.get(f"/api/v1/fields/{pair.field}/history?page_size=100").json()["results"]
    assert {event["annotation_set_id"] for event in history} <= {None}


def test_adjudicators_and_admins_see_both_sets_at_any_time(
    pair: Pair, adjudicator: Any, lab_admin: Any, client_for: Any
) -> None:
    for user in (adjudicator, lab_admin):
        client = client_for(user)
        assert {pair.sets["a"], pair.sets["b"]} <= ids(client.get(f"/api/v1/annotation-sets?field={pair.field}"))
        rows = client.get(f"/api/v1/assignments?field={pair.field}").json()["results"]
        assert sorted(row["cell_count"] for row in rows) == [1, 2]


def test_hidden_pre_labels_are_hidden_from_annotators_only(pair: Pair, client_for: Any, adjudicator: Any) -> None:
    ReviewSettings.objects.update_or_create(pk=1, defaults={"show_prelabels": False})
    client = pair.clients["a"]

    assert client.get(f"/api/v1/annotation-sets/{pair.prediction_set}").status_code == 404
    assert ids(client.get("/api/v1/cells?kind=prediction")) == set()
    refused = client.post(
        f"/api/v1/annotation-sets/{pair.sets['a']}/accept", {"all": True, "version": pair.versions["a"]}, format="json"
    )
    assert refused.status_code == 403
    assert "hides the model's pre-labels" in refused.json()["detail"]
    assert client_for(adjudicator).get(f"/api/v1/annotation-sets/{pair.prediction_set}").status_code == 200
