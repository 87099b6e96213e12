"""Annotator traffic for the load benchmark (benchmarks/load.py runs `locust --headless -f benchmarks/locustfile.py`).

Each simulated user is one seeded annotator (never two users on one annotator, so a 409 would be a real fault): it
opens its worklist, opens fields, reads their cells and edits them with If-Match, and now and then adds a cell and
removes it again. Request names start with "read:" or "write:"; every request's outcome and time is written to
LOAD_SAMPLES (JSON) when locust quits, and load.py turns them into the figures.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
_next_annotator = itertools.count()
SAMPLES: list[tuple[str, float, bool]] = []
ERRORS: list[str] = []
WORKLIST_PAGE = 50


@events.request.add_listener
def _record(name: str, response_time: float, exception: Any, **_: Any) -> None:
    SAMPLES.append((name, response_time, exception is None))
    if exception is not None and len(ERRORS) < 20:
        ERRORS.append(f"{name}: {exception}")


@events.quitting.add_listener
def _write_samples(**_: Any) -> None:
    Path(os.environ["LOAD_SAMPLES"]).write_text(json.dumps({"samples": SAMPLES, "errors": ERRORS}))


class Annotator(FastHttpUser):
    wait_time = between(0.1, 0.6)

    def on_start(self) -> None:
        annotators = PLAN["annotators"]
        me = annotators[next(_next_annotator) % len(annotators)]
        self.headers = {"Authorization": f"Token {me['token']}"}
        self.sets = [s for s in me["sets"] if s["cells"]]
        self.versions: dict[int, int] = {}
        self.rng = random.Random(me["username"])
        self.worklist_pages = 1

    def _version_of(self, own: dict[str, Any]) -> int:
        if own["id"] not in self.versions:
            self.read_cells_of(own)
        return self.versions[own["id"]]

    def _keep_version(self, own: dict[str, Any], response: Any) -> None:
        etag = response.headers.get("ETag") if response is not None else None
        if etag:
            self.versions[own["id"]] = int(etag.strip('"'))

    def read_cells_of(self, own: dict[str, Any]) -> None:
        response = self.client.get(
            f"/api/v1/annotation-sets/{own['id']}/cells", headers=self.headers, name="read: cells of a set"
        )
        self._keep_version(own, response)

    @task(2)
    def worklist(self) -> None:
        """A page of the own worklist (page 1 first; later pages within the count the first one gave)."""
        page = self.rng.randint(1, self.worklist_pages)
        path = f"/api/v1/assignments?mine=1&page={page}&page_size={WORKLIST_PAGE}"
        response = self.client.get(path, headers=self.headers, name="read: worklist")
        if response.status_code == 200:
            self.worklist_pages = max(1, -(-int(response.json()["count"]) // WORKLIST_PAGE))

    @task(3)
    def field_detail(self) -> None:
        own = self.rng.choice(self.sets)
        self.client.get(f"/api/v1/fields/{own['field']}", headers=self.headers, name="read: field")

    @task(4)
    def cells(self) -> None:
        self.read_cells_of(self.rng.choice(self.sets))

    @task(1)
    def cell_search(self) -> None:
        own = self.rng.choice(self.sets)
        self.client.get(
            f"/api/v1/cells?field={own['field']}&page_size=100", headers=self.headers, name="read: cell list"
        )

    @task(4)
    def edit_cell(self) -> None:
        own = self.rng.choice(self.sets)
        version = self._version_of(own)
        body = {"x": float(self.rng.randint(0, 580)), "cell_class": self.rng.randint(0, 20)}
        response = self.client.patch(
            f"/api/v1/cells/{self.rng.choice(own['cells'])}",
            json=body,
            headers={**self.headers, "If-Match": f'"{version}"'},
            name="write: edit cell",
        )
        self._keep_version(own, response)

    @task(1)
    def add_and_remove_cell(self) -> None:
        own = self.rng.choice(self.sets)
        version = self._version_of(own)
        body = {"x": 5.0, "y": 5.0, "width": 40.0, "height": 40.0, "cell_class": 11}
        created = self.client.post(
            f"/api/v1/annotation-sets/{own['id']}/cells",
            json=body,
            headers={**self.headers, "If-Match": f'"{version}"'},
            name="write: add cell",
        )
        self._keep_version(own, created)
        if created.status_code != 201:
            return
        cell_id = created.json()["id"]
        deleted = self.client.delete(
            f"/api/v1/cells/{cell_id}",
            headers={**self.headers, "If-Match": f'"{self.versions[own["id"]]}"'},
            name="write: delete cell",
        )
        self._keep_version(own, deleted)
