"""Intake by drag and drop: many images dropped onto a smear go up one request each; the good ones are stored, the
bad ones are listed with the server's reasons, and nothing is stored half."""

from __future__ import annotations

from typing import Any

from aicell.roles import Role
from annotations.models import Field
from tests.factories import PASSWORD, SmearFactory, UserFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot

pytestmark = BROWSER_TEST

GOOD, BAD = 12, 3

# Builds a DataTransfer of distinct PNGs (one colour each, drawn on a canvas), two text files and an empty file,
# then drops it on the drop zone as a user's drag would.
DROP = """async ([good]) => {
  const transfer = new DataTransfer();
  for (let i = 0; i < good; i += 1) {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 48;
    const context = canvas.getContext("2d");
    context.fillStyle = `rgb(${(i * 37) % 256}, ${(i * 91) % 256}, ${(i * 53 + 7) % 256})`;
    context.fillRect(0, 0, 64, 48);
    context.fillRect(i, i, 5, 5);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    transfer.items.add(new File([blob], `field-${i}.png`, { type: "image/png" }));
  }
  transfer.items.add(new File(["not an image"], "notes.txt", { type: "text/plain" }));
  transfer.items.add(new File(["%PDF-1.4"], "report.pdf", { type: "application/pdf" }));
  transfer.items.add(new File([], "empty.png", { type: "image/png" }));
  const zone = document.querySelector("#dropzone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
}"""


def test_dropped_images_store_the_good_and_list_the_bad(page: Any) -> None:
    UserFactory(username="lena", roles=[Role.ADMIN])
    smear = SmearFactory(code="S7")
    log_in(page, "lena", PASSWORD)
    page.click("header.top nav a:has-text('Intake')")
    page.wait_for_selector("#patient-pick option:nth-child(2)", state="attached")
    page.select_option("#patient-pick", label=smear.case.patient.code)
    page.select_option("#case-pick", label=smear.case.code)
    page.select_option("#smear-pick", value=str(smear.pk))
    page.wait_for_selector("#field-list p.empty")
    page.evaluate(DROP, [GOOD])
    page.wait_for_selector(f"#upload-summary:has-text('{GOOD} stored, {BAD} refused, 0 to go')", timeout=60_000)
    refused = page.locator("#upload-list li.refused")
    assert sorted(refused.evaluate_all("rows => rows.map(r => r.dataset.name)")) == [
        "empty.png",
        "notes.txt",
        "report.pdf",
    ]
    for reason in refused.locator(".upload-state").all_inner_texts():
        assert reason.strip()
    page.wait_for_function(f"document.querySelectorAll('#field-list figure.thumb').length === {GOOD}")
    screenshot(page, "intake-drop")
    assert Field.objects.filter(smear=smear).count() == GOOD
