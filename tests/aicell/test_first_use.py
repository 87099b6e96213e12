"""First use under concurrency, on a live server and a database fresh from its migrations: the first logins and
the annotator page's first requests arrive together (the page loads field, sets, cells, classes and settings in
parallel; two tabs start the same annotation set); none may answer 500 or 503.

On SQLite this is the embedded default as the demo serves it (a file in WAL mode, write transactions that wait
their turn); on PostgreSQL it is the production set-up. The singleton rows are created by migrations and only
read by requests, so concurrent first reads have nothing to race for."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationSet, ReviewSettings
from tests.factories import PASSWORD, AssignmentFactory, FieldFactory, UserFactory, prediction_set

ANNOTATORS = 6
TABS = 2  # each annotator opens the field twice at once
# Requests in flight at once: a few browsers' worth (a browser opens up to 6 connections per host). Django's
# development and live servers queue 10 connections; more at once would be refused by the socket, not the app.
CONNECTIONS = 8

Request = tuple[str, str, str | None, dict[str, Any] | None]


def _send(base: str, method: str, path: str, token: str | None, body: dict[str, Any] | None) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:300]


def _all_at_once(base: str, requests: list[Request]) -> list[tuple[Request, int, Any]]:
    """The requests over CONNECTIONS connections (threads) that start together (a barrier) and each send the next
    waiting request as soon as they have their answer, so that requests overlap all the time."""
    start = threading.Barrier(CONNECTIONS)
    waiting = iter(enumerate(requests))
    lock = threading.Lock()
    answers: list[tuple[Request, int, Any] | None] = [None] * len(requests)

    def connection() -> None:
        start.wait(timeout=60)
        while True:
            with lock:
                index, request = next(waiting, (None, None))
            if request is None or index is None:
                return
            answers[index] = (request, *_send(base, *request))

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        for running in [pool.submit(connection) for _ in range(CONNECTIONS)]:
            running.result()
    return [answer for answer in answers if answer is not None]


def _server_errors(answers: list[tuple[Request, int, Any]]) -> list[str]:
    return [f"{method} {path} -> {status} {body}" for (method, path, _, _), status, body in answers if status >= 500]


def test_parallel_first_requests_on_a_fresh_database_never_fail(live_server: Any, committed_db: None) -> None:
    annotators = [UserFactory(roles=[Role.ANNOTATOR]) for _ in range(ANNOTATORS)]
    admin = UserFactory(roles=[Role.ADMIN])
    fields = [FieldFactory() for _ in range(ANNOTATORS // 2)]
    predictions = {
        field.pk: prediction_set(field, [{"x": 5.0, "y": 5.0, "width": 20.0, "height": 20.0}]) for field in fields
    }
    field_of = {}
    for index, annotator in enumerate(annotators):
        field_of[annotator.pk] = fields[index // 2]
        AssignmentFactory(field=field_of[annotator.pk], annotator=annotator)

    # First logins: every user asks for a token from two tabs at once (the token is made on first use).
    logins: list[Request] = [
        ("POST", "/api/v1/auth/token", None, {"username": user.username, "password": PASSWORD})
        for user in [*annotators, admin]
        for _ in range(TABS)
    ]
    answers = _all_at_once(live_server.url, logins)
    assert not (failed := _server_errors(answers)), "\n".join(failed)
    tokens = {body["token"] for _, status, body in answers if status == 200}
    assert len(tokens) == ANNOTATORS + 1, "each user has one token, whichever tab asked first"
    token_of = {request[3]["username"]: body["token"] for request, _, body in answers}  # type: ignore[index]

    # The annotator page's first load from every tab, each tab starting the annotator's set, while the admin
    # changes the review settings.
    tabs: list[list[Request]] = []
    for annotator in annotators:
        token, field = token_of[annotator.username], field_of[annotator.pk]
        prediction = predictions[field.pk].pk
        tabs += [
            [
                ("POST", "/api/v1/annotation-sets", token, {"field": field.pk}),
                ("GET", "/api/v1/review-settings", token, None),
                ("GET", "/api/v1/auth/session", token, None),
                ("GET", "/api/v1/cell-classes", token, None),
                ("GET", f"/api/v1/fields/{field.pk}", token, None),
                ("GET", f"/api/v1/annotation-sets?field={field.pk}&kind=prediction", token, None),
                ("GET", f"/api/v1/annotation-sets/{prediction}/cells", token, None),
                ("GET", "/api/v1/assignments?mine=1", token, None),
            ]
        ] * TABS
    # The tabs' requests interleaved: a tab's first request goes out with every other tab's first request.
    page = [request for step in zip(*tabs, strict=True) for request in step]
    page.append(("PATCH", "/api/v1/review-settings", token_of[admin.username], {"iou_threshold": 0.6}))
    answers = _all_at_once(live_server.url, page)
    assert not (failed := _server_errors(answers)), "\n".join(failed)

    # One tab of each annotator made the set, the other was told which one it is (the page then opens it).
    starts = [(request, status, body) for request, status, body in answers if request[0] == "POST"]
    assert sorted(status for _, status, _ in starts) == [201] * ANNOTATORS + [409] * ANNOTATORS
    made = {body["id"] for _, status, body in starts if status == 201}
    named = {body["existing_annotation_set_id"] for _, status, body in starts if status == 409}
    assert (
        made == named == set(AnnotationSet.objects.filter(kind=AnnotationKind.ANNOTATOR).values_list("id", flat=True))
    )
    assert ReviewSettings.objects.get().iou_threshold == 0.6


@pytest.mark.django_db
def test_the_review_settings_row_comes_with_the_migrations_and_reading_it_never_writes(
    client_for: Callable[[Any], Any], annotator: Any
) -> None:
    assert ReviewSettings.objects.filter(pk=1).exists(), "created by a data migration, not by the first request"
    ReviewSettings.objects.all().delete()  # as after a flush
    answer = client_for(annotator).get("/api/v1/review-settings")
    assert answer.status_code == 200
    assert (answer.json()["show_prelabels"], answer.json()["iou_threshold"]) == (True, 0.5)
    assert not ReviewSettings.objects.exists(), "a read must not create the row (concurrent first reads would race)"
