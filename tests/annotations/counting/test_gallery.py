"""GET /api/v1/cases/{id}/gallery and /smears/{id}/gallery: one explicit source, the same cells and counts as the
differential report of that source (one selector, `gather_cells`), the active classifier's predictions only, each
cell once."""

from __future__ import annotations

from typing import Any

import pytest

from annotations.models import AnnotationKind
from tests.annotations.review.review_api import conflicts_of, resolve
from tests.factories import (
    ActiveClassifierFactory,
    AnnotationSetFactory,
    CaseFactory,
    FieldFactory,
    ModelVersionFactory,
    PredictionSetFactory,
    SmearFactory,
    TruthSetFactory,
    add_cells,
    reviewed_field,
)

pytestmark = pytest.mark.django_db

LYMPHOBLAST, LYMPHOCYTE = 11, 12
BOX = {"x": 100.0, "y": 100.0, "width": 60.0, "height": 60.0}


@pytest.fixture
def world(annotator: Any, second_annotator: Any, client_for: Any, adjudicator: Any) -> dict[str, Any]:
    """One case, three fields: field 1 reviewed by two annotators who disagree on a lymphoblast (A) vs a lymphocyte
    (B), overruled by the adjudicator for B; field 2 with a consensus of 3 lymphoblasts and 5 segmented; field 3 with
    no truth. The active classifier predicted every field; a retired and a candidate version predicted too."""
    case = CaseFactory()
    smear = SmearFactory(case=case)
    reviewed = reviewed_field(
        annotator,
        second_annotator,
        [{**BOX, "cell_class_id": LYMPHOBLAST}],
        [{**BOX, "cell_class_id": LYMPHOCYTE}],
        smear=smear,
    )
    adjudicating = client_for(adjudicator)
    for side, who in (("keep", client_for(annotator)), ("keep", client_for(second_annotator))):
        conflict = conflicts_of(adjudicating, reviewed.pk)[0]
        assert resolve(who, conflict, side, reason="sure").status_code == 200
    conflict = conflicts_of(adjudicating, reviewed.pk)[0]
    decided = resolve(adjudicating, conflict, "b", reason="a lymphocyte: no nucleoli")
    assert decided.status_code == 200, decided.json()
    second, third = FieldFactory(smear=smear), FieldFactory(smear=smear)
    add_cells(TruthSetFactory(field=second), {"lymphoblast": 3, "neutrophilic segmented": 5})
    active = ActiveClassifierFactory()
    retired = ModelVersionFactory(status="retired")
    candidate = ModelVersionFactory()
    for field in (reviewed, second, third):
        add_cells(PredictionSetFactory(field=field, model_version=active), {"lymphoblast": 2, "lymphocyte": 1})
        add_cells(PredictionSetFactory(field=field, model_version=retired), {"lymphoblast": 4})
        add_cells(PredictionSetFactory(field=field, model_version=candidate), {"myeloblast": 4})
    mine = AnnotationSetFactory(field=third, annotator=annotator)
    add_cells(mine, {"lymphocyte": 2, "monocyte": 1}, uncountable=1)
    return {"case": case, "smear": smear, "reviewed": reviewed, "active": active}


def counts(differential: dict[str, Any]) -> dict[str, Any]:
    return {
        "n_cells": differential["n_cells"],
        "n_counted": differential["n_counted"],
        "n_uncountable": differential["n_uncountable"],
        "n_unclassified": differential["n_unclassified"],
        "blasts": differential["blasts"]["share"]["count"],
        "blast_cells": sorted(differential["blasts"]["cell_ids"]),
        "classes": [item["share"]["count"] for item in differential["classes"]],
    }


@pytest.mark.parametrize("source", ["consensus", "model", "mine"])
@pytest.mark.parametrize("scope", ["cases", "smears"])
def test_gallery_counts_equal_the_report_counts_for_each_source(
    client_for: Any, annotator: Any, world: dict[str, Any], source: str, scope: str
) -> None:
    client = client_for(annotator)
    subject = world["case"] if scope == "cases" else world["smear"]
    gallery = client.get(f"/api/v1/{scope}/{subject.pk}/gallery", {"source": source})
    report = client.get(f"/api/v1/{scope}/{subject.pk}/differential", {"source": source})
    assert gallery.status_code == report.status_code == 200, gallery.json()
    body = gallery.json()
    assert body["source"] == source
    assert counts(body["differential"]) == counts(report.json()["differential"])
    assert len(body["cells"]) == body["differential"]["n_cells"]
    ids = [cell["id"] for cell in body["cells"]]
    assert len(ids) == len(set(ids)), "a cell is shown once"


def test_the_overruled_lymphoblast_is_not_counted(client_for: Any, annotator: Any, world: dict[str, Any]) -> None:
    body = client_for(annotator).get(f"/api/v1/cases/{world['case'].pk}/gallery", {"source": "consensus"}).json()
    differential = body["differential"]
    # 3 lymphoblasts + 5 segmented + the adjudicated lymphocyte; the annotator's overruled lymphoblast is not there.
    assert (differential["n_counted"], differential["blasts"]["share"]["count"]) == (9, 3)
    of_reviewed = [cell for cell in body["cells"] if cell["field"] == world["reviewed"].pk]
    assert [cell["cell_class"] for cell in of_reviewed] == [LYMPHOCYTE]


def test_model_source_shows_the_active_version_only(client_for: Any, annotator: Any, world: dict[str, Any]) -> None:
    body = client_for(annotator).get(f"/api/v1/cases/{world['case'].pk}/gallery", {"source": "model"}).json()
    assert len(body["cells"]) == 9  # 3 fields x 3 cells of the active classifier; none of the retired or candidate
    assert {cell["cell_class"] for cell in body["cells"]} == {LYMPHOBLAST, LYMPHOCYTE}
    assert body["differential"]["blasts"]["share"]["count"] == 6


def test_mine_is_the_asking_annotators_own_work(
    client_for: Any, annotator: Any, second_annotator: Any, world: dict[str, Any]
) -> None:
    mine = client_for(annotator).get(f"/api/v1/cases/{world['case'].pk}/gallery", {"source": "mine"}).json()
    theirs = client_for(second_annotator).get(f"/api/v1/cases/{world['case'].pk}/gallery", {"source": "mine"}).json()
    # annotator: the submitted lymphoblast of field 1, 2 lymphocytes + 1 monocyte + 1 uncountable of field 3
    assert (mine["differential"]["n_cells"], mine["differential"]["blasts"]["share"]["count"]) == (5, 1)
    assert (theirs["differential"]["n_cells"], theirs["differential"]["blasts"]["share"]["count"]) == (1, 0)


def test_annotation_set_reads_show_only_the_active_versions_predictions(
    client_for: Any, adjudicator: Any, world: dict[str, Any]
) -> None:
    sets = client_for(adjudicator).get("/api/v1/annotation-sets", {"field": world["reviewed"].pk}).json()["results"]
    predictions = [s for s in sets if s["kind"] == AnnotationKind.PREDICTION]
    assert [s["model_version"] for s in predictions] == [world["active"].pk]


def test_sources_a_role_may_not_see_are_refused(
    client_for: Any, researcher: Any, annotator: Any, world: dict[str, Any]
) -> None:
    case = world["case"].pk
    refused = client_for(researcher).get(f"/api/v1/cases/{case}/gallery", {"source": "model"})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["field"] == "source"
    assert client_for(researcher).get(f"/api/v1/cases/{case}/gallery").status_code == 200
    blend = client_for(annotator).get(f"/api/v1/cases/{case}/gallery", {"source": "consensus+model"})
    assert blend.status_code == 400
    assert blend.json()["errors"][0]["field"] == "source"


@pytest.mark.parametrize("scope", ["cases", "smears"])
def test_an_empty_source_is_refused_not_read_as_the_default(
    client_for: Any, annotator: Any, world: dict[str, Any], scope: str
) -> None:
    """Issue 21's fuzzing: `?source=` answered 200 with the consensus; only leaving it out asks for the default."""
    subject = world["case"] if scope == "cases" else world["smear"]
    response = client_for(annotator).get(f"/api/v1/{scope}/{subject.pk}/gallery", {"source": ""})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "source"
