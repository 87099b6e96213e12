"""GET /api/v1/agreement: box F1, Cohen's kappa (compared with scikit-learn on the same labels), the per-class
table, the blast % difference, per field and per pair of annotators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sklearn.metrics import cohen_kappa_score

from aicell.roles import Role
from tests.factories import CaseFactory, SmearFactory, reviewed_field

pytestmark = pytest.mark.django_db

MYELOBLAST, LYMPHOBLAST, LYMPHOCYTE, MONOCYTE = 0, 11, 12, 16


def row_of_boxes(classes: Sequence[int | None]) -> list[dict[str, Any]]:
    """One 40x40 box per class, side by side and far apart, so the i-th boxes of A and B pair with IoU 1."""
    return [{"x": 60 * i, "y": 100, "width": 40, "height": 40, "cell_class_id": c} for i, c in enumerate(classes)]


@pytest.fixture
def three_annotators(make_user: Any) -> list[Any]:
    return [make_user(Role.ANNOTATOR) for _ in range(3)]


def test_agreement_of_a_case_matches_scikit_learn_and_hand_counts(
    three_annotators: list[Any], client_for: Any, adjudicator: Any
) -> None:
    u1, u2, u3 = three_annotators
    smear = SmearFactory(case=CaseFactory())
    # Field 1: u1 is A, u2 is B. Field 2: u2 is A, u1 is B, and u2 drew one box more. Field 3: u1 and u3.
    labels_1 = ([LYMPHOBLAST, LYMPHOBLAST, LYMPHOCYTE, MYELOBLAST], [LYMPHOBLAST, LYMPHOCYTE, LYMPHOCYTE, MYELOBLAST])
    labels_2 = ([LYMPHOBLAST, MONOCYTE, LYMPHOCYTE], [LYMPHOBLAST, MONOCYTE, LYMPHOBLAST])
    labels_3 = ([MYELOBLAST, LYMPHOCYTE], [MYELOBLAST, LYMPHOCYTE])
    f1 = reviewed_field(u1, u2, row_of_boxes(labels_1[0]), row_of_boxes(labels_1[1]), smear=smear)
    f2 = reviewed_field(u2, u1, row_of_boxes([*labels_2[0], LYMPHOCYTE]), row_of_boxes(labels_2[1]), smear=smear)
    reviewed_field(u1, u3, row_of_boxes(labels_3[0]), row_of_boxes(labels_3[1]), smear=smear)

    report = client_for(adjudicator).get(f"/api/v1/agreement?case={smear.case_id}").json()

    assert report["n_fields"] == 3
    overall = report["overall"]
    all_a = labels_1[0] + labels_2[0] + labels_3[0]
    all_b = labels_1[1] + labels_2[1] + labels_3[1]
    assert overall["class_kappa"]["value"] == pytest.approx(cohen_kappa_score(all_a, all_b))
    assert overall["class_kappa"]["n_pairs"] == 9
    # Box F1 = 2 * matched / (boxes of A + boxes of B) = 2 * 9 / (10 + 9).
    assert overall["boxes"]["f1"] == pytest.approx(18 / 19)
    per_class = {row["class_id"]: row for row in overall["per_class"]}
    assert per_class[LYMPHOBLAST]["kappa"]["value"] == pytest.approx(
        cohen_kappa_score([c == LYMPHOBLAST for c in all_a], [c == LYMPHOBLAST for c in all_b])
    )
    assert (per_class[LYMPHOBLAST]["count_a"], per_class[LYMPHOBLAST]["count_b"]) == (3, 3)
    assert per_class[LYMPHOBLAST]["class_conflicts"] == 2
    # Blasts first: A counted 5 lymphoblasts or myeloblasts among 10 cells, B 5 among 9.
    blasts = overall["differential_difference"][0]
    assert blasts["name"] == "blasts"
    assert blasts["difference"] == pytest.approx(100 * 5 / 10 - 100 * 5 / 9)

    fields = {row["field"]: row for row in report["per_field"]}
    assert fields[f2.pk]["n_only_a"] == 1
    assert fields[f1.pk]["class_kappa"]["value"] == pytest.approx(cohen_kappa_score(*labels_1))

    # The pair u1/u2 pools fields 1 and 2 with u1 as A on both: u2's extra box of field 2 is "only in B".
    pairs = {(row["annotator_a"], row["annotator_b"]): row for row in report["per_pair"]}
    assert set(pairs) == {(u1.pk, u2.pk), (u1.pk, u3.pk)}
    u1_u2 = pairs[(u1.pk, u2.pk)]
    assert (u1_u2["n_fields"], u1_u2["n_only_a"], u1_u2["n_only_b"]) == (2, 0, 1)
    u1_labels = labels_1[0] + labels_2[1]
    u2_labels = labels_1[1] + labels_2[0]
    assert u1_u2["class_kappa"]["value"] == pytest.approx(cohen_kappa_score(u1_labels, u2_labels))
    assert pairs[(u1.pk, u3.pk)]["class_kappa"]["value"] == pytest.approx(1.0)


def test_an_annotator_measures_only_the_fields_they_reviewed(three_annotators: list[Any], client_for: Any) -> None:
    u1, u2, u3 = three_annotators
    smear = SmearFactory()
    reviewed_field(u1, u2, row_of_boxes([LYMPHOBLAST]), row_of_boxes([LYMPHOCYTE]), smear=smear)
    mine = reviewed_field(u1, u3, row_of_boxes([LYMPHOBLAST]), row_of_boxes([LYMPHOBLAST]), smear=smear)

    report = client_for(u3).get(f"/api/v1/agreement?case={smear.case_id}").json()

    assert [row["field"] for row in report["per_field"]] == [mine.pk]
    assert client_for(u1).get(f"/api/v1/agreement?smear={smear.pk}").json()["n_fields"] == 2
    assert client_for(u1).get(f"/api/v1/agreement?annotator={u3.pk}").json()["n_fields"] == 1


def test_undefined_kappa_is_null_with_a_reason_and_bad_parameters_are_refused(
    three_annotators: list[Any], client_for: Any, adjudicator: Any
) -> None:
    u1, u2, _ = three_annotators
    field = reviewed_field(u1, u2, row_of_boxes([LYMPHOBLAST]), row_of_boxes([LYMPHOBLAST]))
    client = client_for(adjudicator)

    kappa = client.get(f"/api/v1/agreement?field={field.pk}").json()["overall"]["class_kappa"]
    assert kappa["value"] is None
    assert "only the label" in kappa["reason"]
    refused = client.get("/api/v1/agreement?case=first")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "case"
