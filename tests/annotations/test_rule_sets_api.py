"""Rule sets as versioned data: seeded defaults, editing creates a version, activation, validation, immutability."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from annotations.counting.rules import DEFAULT_RULE_SET, FAB_RULE_SET, parse_rule_set
from annotations.models import AuditEvent, RuleSet, RuleSetImmutable
from tests.factories import FieldFactory, SmearFactory, TruthSetFactory, add_cells

pytestmark = pytest.mark.django_db


def with_all_threshold(percent: float) -> dict[str, Any]:
    content = copy.deepcopy(DEFAULT_RULE_SET)
    content["rules"][0]["threshold_percent"] = percent
    return content


def test_migration_seeds_the_default_active_and_the_fab_variant(client_for: Any, researcher: Any) -> None:
    body = client_for(researcher).get("/api/v1/rule-sets").json()
    rows = {(row["name"], row["version"]): row for row in body["results"]}
    assert set(rows) == {("default", 1), ("fab", 1)}
    assert rows[("default", 1)]["active"] is True
    assert rows[("fab", 1)]["active"] is False
    assert rows[("default", 1)]["content"] == parse_rule_set(DEFAULT_RULE_SET).to_dict()
    assert rows[("fab", 1)]["content"]["rules"][0]["threshold_percent"] == 30
    assert rows[("default", 1)]["description"] == DEFAULT_RULE_SET["description"]


def test_editing_stores_a_new_version_and_leaves_the_old_one_unchanged(client_for: Any, lab_admin: Any) -> None:
    client = client_for(lab_admin)
    original = RuleSet.objects.get(name="default", version=1)
    before = copy.deepcopy(original.content)

    request_body = {"name": "default", "content": with_all_threshold(25), "note": "local audit"}
    created = client.post("/api/v1/rule-sets", request_body, format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["version"], body["active"], body["note"]) == ("default", 2, False, "local audit")
    assert body["created_by"] == lab_admin.username
    assert body["content"]["rules"][0]["threshold_percent"] == 25
    original.refresh_from_db()
    assert original.content == before
    assert original.active is True
    third = client.post("/api/v1/rule-sets", {"name": "default", "content": with_all_threshold(22)}, format="json")
    assert third.json()["version"] == 3
    new_name = client.post("/api/v1/rule-sets", {"name": "local", "content": FAB_RULE_SET}, format="json")
    assert new_name.json()["version"] == 1
    assert AuditEvent.objects.filter(action="rule_set.create", actor=lab_admin).count() == 3


def test_activation_switches_the_rule_set_differentials_use(client_for: Any, lab_admin: Any, annotator: Any) -> None:
    """25% lymphoblasts of 400 cells (CI 20.8-29.5%): ALL under the default (> 20%), not under > 30%."""
    smear = SmearFactory()
    add_cells(TruthSetFactory(field=FieldFactory(smear=smear)), {"lymphoblast": 100, "neutrophilic segmented": 300})
    admin = client_for(lab_admin)
    version_2 = admin.post("/api/v1/rule-sets", {"name": "default", "content": with_all_threshold(30)}, format="json")
    differential = f"/api/v1/smears/{smear.pk}/differential"
    assert client_for(annotator).get(differential).json()["summary"]["diagnosis"] == "ALL"

    activated = admin.post(f"/api/v1/rule-sets/{version_2.json()['id']}/activate")

    assert activated.status_code == 200
    assert activated.json()["active"] is True
    assert list(RuleSet.objects.filter(active=True).values_list("name", "version")) == [("default", 2)]
    body = client_for(annotator).get(differential).json()
    assert (body["rule_set"]["version"], body["summary"]["diagnosis"]) == (2, None)
    event = AuditEvent.objects.get(action="rule_set.activate")
    assert (event.before or {})["version"] == 1
    assert (event.after or {})["version"] == 2
    assert admin.post(f"/api/v1/rule-sets/{version_2.json()['id']}/activate").status_code == 200


def test_create_and_activate_in_one_request(client_for: Any, lab_admin: Any) -> None:
    response = client_for(lab_admin).post(
        "/api/v1/rule-sets", {"name": "fab", "content": FAB_RULE_SET, "activate": True}, format="json"
    )
    assert response.status_code == 201
    assert list(RuleSet.objects.filter(active=True).values_list("name", "version")) == [("fab", 2)]


def test_invalid_content_answers_400_with_every_path_and_stores_nothing(client_for: Any, lab_admin: Any) -> None:
    content = copy.deepcopy(DEFAULT_RULE_SET)
    content["rules"][0]["numerator"] = ["lymfoblast"]
    del content["rules"][1]["threshold_percent"]
    content["min_cells"] = 0

    response = client_for(lab_admin).post("/api/v1/rule-sets", {"name": "default", "content": content}, format="json")

    assert response.status_code == 400
    errors = {error["field"]: error["reason"] for error in response.json()["errors"]}
    assert errors == {
        "content.min_cells": "must be an integer >= 1, got 0",
        "content.rules[0].numerator[0]": "unknown class 'lymfoblast' (did you mean 'lymphoblast'?)",
        "content.rules[1]": "needs exactly one of 'threshold_percent' and 'threshold_count'",
    }
    assert response.json()["detail"] == "The rule set has 3 problem(s); nothing was stored."
    assert RuleSet.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Default Rules", "content": DEFAULT_RULE_SET}, "name"),
        ({"name": "default"}, "content"),
        ({"name": "default", "content": "ALL > 20%"}, "content"),
        ({"name": "default", "content": []}, "content"),
    ],
)
def test_bad_bodies_answer_400(client_for: Any, lab_admin: Any, body: dict[str, Any], field: str) -> None:
    response = client_for(lab_admin).post("/api/v1/rule-sets", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_stored_rows_cannot_be_changed_or_deleted_through_the_api_or_the_orm(client_for: Any, lab_admin: Any) -> None:
    rule_set = RuleSet.objects.get(name="default")
    client = client_for(lab_admin)
    assert client.patch(f"/api/v1/rule-sets/{rule_set.pk}", {"note": "x"}, format="json").status_code == 405
    assert client.put(f"/api/v1/rule-sets/{rule_set.pk}", {"note": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/rule-sets/{rule_set.pk}").status_code == 405
    rule_set.note = "changed in place"
    with pytest.raises(RuleSetImmutable):
        rule_set.save()
    with pytest.raises(RuleSetImmutable):
        RuleSet.objects.filter(pk=rule_set.pk).update(content={})
    with pytest.raises(RuleSetImmutable):
        rule_set.delete()
    with pytest.raises(RuleSetImmutable):
        RuleSet.objects.all().delete()


def test_researchers_see_no_author_names(client_for: Any, lab_admin: Any, researcher: Any) -> None:
    created = client_for(lab_admin).post("/api/v1/rule-sets", {"name": "x", "content": FAB_RULE_SET}, format="json")
    assert client_for(researcher).get(f"/api/v1/rule-sets/{created.json()['id']}").json()["created_by"] is None


def test_activating_an_unknown_rule_set_is_404(client_for: Any, lab_admin: Any) -> None:
    assert client_for(lab_admin).post("/api/v1/rule-sets/999999/activate").status_code == 404


def test_list_filters_by_name_and_active(client_for: Any, annotator: Any) -> None:
    client = client_for(annotator)
    assert [row["name"] for row in client.get("/api/v1/rule-sets?active=true").json()["results"]] == ["default"]
    assert [row["name"] for row in client.get("/api/v1/rule-sets?name=fab").json()["results"]] == ["fab"]
