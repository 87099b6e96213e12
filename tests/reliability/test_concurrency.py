"""Many annotators at once against a live server (gunicorn, several worker processes, PostgreSQL).

Each annotator edits the cells of their own set from two browser tabs at the same time (so their writes race on one
version), while the two annotators and an adjudicator of reviewed fields decide the same conflicts at the same
instant. What must hold: no lost update (the final state is exactly the successful writes applied in version order),
every losing write answered 409 (nothing else), one audit event per successful write and none for a refused one.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from aicell.roles import Role
from annotations.models import AnnotationKind, AuditEvent, Cell, Conflict
from tests.factories import AnnotationSetFactory, AssignmentFactory, CellFactory, FieldFactory, reviewed_field
from tests.reliability.conftest import Server, Stack
from tests.reliability.figures import full_mode, record_figure

pytestmark = [pytest.mark.services, pytest.mark.slow]

SECTION = "concurrency"
BOX = {"x": 10, "y": 20, "width": 50, "height": 40}


@dataclass
class Write:
    version: int  # the set version this write produced (its ETag)
    cell_id: int
    changes: dict[str, Any]


@dataclass
class Tab:
    """One browser tab of an annotator: it remembers the version it last saw and writes with If-Match."""

    server: Server
    token: str
    set_id: int
    cell_ids: list[int]
    version: int
    writes: list[Write] = field(default_factory=list)
    conflicts: int = 0
    unexpected: list[tuple[int, Any]] = field(default_factory=list)

    def edit(self, rng: random.Random) -> None:
        cell_id = rng.choice(self.cell_ids)
        changes = {"x": float(rng.randint(0, 580)), "cell_class": rng.randint(0, 20)}
        status, body, headers = self.server.request(
            "PATCH", f"/api/v1/cells/{cell_id}", self.token, changes, **{"If-Match": f'"{self.version}"'}
        )
        if status == 200:
            self.version = int(headers["ETag"].strip('"'))
            self.writes.append(Write(self.version, cell_id, changes))
        elif status == 409 and body.get("code") == "conflict":
            self.conflicts += 1
            self.version = body["current_version"]  # re-read, as the UI does, and go on
        else:
            self.unexpected.append((status, body))


@dataclass
class Decider:
    """Someone deciding a conflict: an annotator of the field (concede) or an adjudicator (choose a side)."""

    token: str
    body: dict[str, Any]
    outcomes: list[tuple[int, int]] = field(default_factory=list)  # (conflict id, status)
    unexpected: list[tuple[int, Any]] = field(default_factory=list)


def run_threads(targets: list[Any]) -> None:
    """Run the clients at once; a client that died (e.g. its request timed out) fails the test with its error,
    since its writes' outcomes would otherwise be silently missing from the replay below."""
    failures: list[BaseException] = []

    def guarded(target: Any) -> None:
        try:
            target()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    assert not failures, [repr(failure) for failure in failures[:5]]


def test_many_annotators_editing_and_resolving_at_once_lose_nothing(
    stack: Stack, make_user: Any, token_of: Any
) -> None:
    annotators_n, writes_per_tab, conflict_fields_per_pair = (16, 40, 4) if full_mode() else (8, 8, 1)
    cells_per_set = 4
    annotators = [make_user(Role.ANNOTATOR) for _ in range(annotators_n)]
    adjudicator = make_user(Role.ADJUDICATOR)
    server = stack.gunicorn(workers=4)

    # Each annotator's own draft set, edited from two tabs at once.
    tabs: list[Tab] = []
    start_state: dict[int, dict[int, tuple[float, int | None]]] = {}
    for annotator in annotators:
        own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
        AssignmentFactory(annotator=annotator, field=own.field)
        cells = [CellFactory(annotation_set=own, **BOX, cell_class_id=0) for _ in range(cells_per_set)]
        start_state[own.pk] = {cell.pk: (cell.x, cell.cell_class_id) for cell in cells}
        token = token_of(annotator)
        tabs += [Tab(server, token, own.pk, [c.pk for c in cells], own.version) for _ in range(2)]
    start_versions = {tab.set_id: tab.version for tab in tabs}

    # Reviewed fields with one class conflict each, decided at the same instant by both annotators and an
    # adjudicator: exactly one of the three wins.
    races: list[tuple[int, list[Decider]]] = []
    adjudicator_token = token_of(adjudicator)
    for a, b in zip(annotators[::2], annotators[1::2], strict=True):
        for _ in range(conflict_fields_per_pair):
            made = reviewed_field(a, b, [{**BOX, "cell_class_id": 11}], [{**BOX, "cell_class_id": 0}])
            conflict = Conflict.objects.get(field=made)
            deciders = [
                Decider(token_of(a), {"decision": "concede", "version": conflict.version}),
                Decider(token_of(b), {"decision": "concede", "version": conflict.version}),
                Decider(adjudicator_token, {"decision": "a", "version": conflict.version, "reason": "race"}),
            ]
            races.append((conflict.pk, deciders))

    def edit_loop(tab: Tab, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(writes_per_tab):
            tab.edit(rng)

    def decide(conflict_id: int, decider: Decider, barrier: threading.Barrier) -> None:
        barrier.wait(timeout=60)
        path = f"/api/v1/conflicts/{conflict_id}/resolve"
        status, body, _ = server.request("POST", path, decider.token, decider.body)
        decider.outcomes.append((conflict_id, status))
        if status not in (200, 409) or (status == 409 and body.get("code") != "conflict"):
            decider.unexpected.append((status, body))

    def race_loop(batch: list[tuple[int, list[Decider]]]) -> None:
        for conflict_id, deciders in batch:
            barrier = threading.Barrier(len(deciders))
            run_threads([lambda c=conflict_id, d=d, b=barrier: decide(c, d, b) for d in deciders])

    race_batches = [races[i::4] for i in range(4)]
    run_threads(
        [lambda t=tab, i=i: edit_loop(t, i) for i, tab in enumerate(tabs)]
        + [lambda b=batch: race_loop(b) for batch in race_batches]
    )

    # Nothing but 200 and 409.
    unexpected = [u for tab in tabs for u in tab.unexpected] + [
        u for _, deciders in races for d in deciders for u in d.unexpected
    ]
    assert not unexpected, unexpected[:5]

    # No lost update: per set, the successful writes carry consecutive versions, and replaying them in version
    # order gives exactly the stored cells; one audit event per successful write, with what the write set.
    lost = 0
    writes_total = 0
    for set_id, start_version in start_versions.items():
        writes = sorted((w for tab in tabs if tab.set_id == set_id for w in tab.writes), key=lambda w: w.version)
        writes_total += len(writes)
        assert [w.version for w in writes] == list(range(start_version + 1, start_version + 1 + len(writes)))
        expected = dict(start_state[set_id])
        for write in writes:
            expected[write.cell_id] = (write.changes["x"], write.changes["cell_class"])
        stored = {c.pk: (c.x, c.cell_class_id) for c in Cell.objects.filter(annotation_set_id=set_id)}
        lost += sum(1 for cell_id, state in expected.items() if stored.get(cell_id) != state)
        # Written under the set's row lock, so their id order is the version order.
        events = [
            after or {}
            for after in AuditEvent.objects.filter(annotation_set_id=set_id, action="cell.update")
            .order_by("id")
            .values_list("after", flat=True)
        ]
        assert len(events) == len(writes), (set_id, len(events), len(writes))
        assert [(after["x"], after["cell_class"]) for after in events] == [
            (w.changes["x"], w.changes["cell_class"]) for w in writes
        ]
    assert lost == 0

    # Every conflict decided exactly once: one 200, the others 409, one audit event, one consensus.
    decided_409 = 0
    for conflict_id, deciders in races:
        statuses = Counter(status for d in deciders for cid, status in d.outcomes if cid == conflict_id)
        assert statuses == Counter({200: 1, 409: len(deciders) - 1}), (conflict_id, statuses)
        decided_409 += statuses[409]
        conflict = Conflict.objects.get(pk=conflict_id)
        assert conflict.version == 2
        assert AuditEvent.objects.filter(entity="conflict", entity_id=conflict_id).count() == 1
        assert conflict.field.annotation_sets.filter(kind=AnnotationKind.CONSENSUS).count() == 1

    edit_409 = sum(tab.conflicts for tab in tabs)
    assert edit_409 > 0, "the tabs never raced: the test did not exercise the optimistic lock"
    record_figure(SECTION, "concurrent clients (annotator tabs + deciders)", len(tabs) + 3 * len(races))
    record_figure(SECTION, "successful writes (each audited once)", writes_total + len(races))
    record_figure(SECTION, "conflicts answered 409", edit_409 + decided_409)
    record_figure(SECTION, "lost updates", lost)
