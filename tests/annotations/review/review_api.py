"""Steps of double review driven through the HTTP API, as the browser drives them."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient


def version_of(response: Any) -> int:
    return int(response["ETag"].strip('"'))


def assign(client: APIClient, field_id: int, user: Any) -> dict[str, Any]:
    response = client.post("/api/v1/assignments", {"field": field_id, "annotator": user.pk}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def start_set(client: APIClient, field_id: int) -> tuple[int, int]:
    response = client.post("/api/v1/annotation-sets", {"field": field_id}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"], version_of(response)


def draw(client: APIClient, set_id: int, version: int, box: dict[str, Any]) -> tuple[int, int]:
    """Add a cell; returns its id and the set's new version."""
    response = client.post(f"/api/v1/annotation-sets/{set_id}/cells", {**box, "version": version}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"], version_of(response)


def submit(client: APIClient, set_id: int, version: int) -> dict[str, Any]:
    response = client.post(f"/api/v1/annotation-sets/{set_id}/submit", {"version": version}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def annotate(client: APIClient, field_id: int, boxes: list[dict[str, Any]]) -> tuple[int, int, list[int]]:
    """Start a set and draw the boxes: (set id, version, cell ids)."""
    set_id, version = start_set(client, field_id)
    cell_ids = []
    for box in boxes:
        cell_id, version = draw(client, set_id, version, box)
        cell_ids.append(cell_id)
    return set_id, version, cell_ids


def resolve(client: APIClient, conflict: dict[str, Any], decision: str, **extra: Any) -> Any:
    body = {"decision": decision, "version": conflict["version"], **extra}
    return client.post(f"/api/v1/conflicts/{conflict['id']}/resolve", body, format="json")


def conflicts_of(client: APIClient, field_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/fields/{field_id}/conflicts")
    assert response.status_code == 200, response.json()
    return response.json()


def field_status(client: APIClient, field_id: int) -> str:
    return client.get(f"/api/v1/fields/{field_id}").json()["status"]


def box(x: float, y: float, size: float = 60, cell_class: int | None = 11, countable: bool = True) -> dict[str, Any]:
    return {"x": x, "y": y, "width": size, "height": size, "cell_class": cell_class, "countable": countable}
