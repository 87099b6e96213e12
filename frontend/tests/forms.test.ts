// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api/http";
import { h } from "../src/ui/dom";
import { clearProblems, KEPT_ON_CONFLICT, labelled, showProblems } from "../src/ui/forms";

function form(): HTMLFormElement {
  return h(
    "form",
    {},
    labelled("Code", h("input", { name: "code", value: "P-1" })),
    h("div", { dataset: { field: "stages" } }, h("input", { type: "checkbox", name: "stages", value: "detector" })),
    h("button", { type: "submit" }, "Save"),
  );
}

const refused = (status: number, errors: Array<{ field: string; reason: string }>, detail = "Refused.") =>
  new ApiError(status, { detail, errors }, "fallback");

describe("showProblems, the one way a form shows the server's errors", () => {
  it("puts each reason beside its input, labelled or in a data-field wrapper, and marks them", () => {
    const f = form();
    const shown = showProblems(
      f,
      refused(400, [
        { field: "code", reason: "already exists" },
        { field: "stages[0]", reason: "not a stage" },
      ]),
    );
    expect(shown).toBe(true);
    expect(f.querySelector(".field-error[data-for='code']")?.textContent).toBe("already exists");
    expect(f.querySelector("[name='code']")?.classList.contains("invalid")).toBe(true);
    expect(f.querySelector("[data-field='stages'] .field-error")?.textContent).toBe("not a stage");
    expect(f.querySelector("[data-field='stages']")?.classList.contains("invalid")).toBe(true);
    expect(f.querySelector(".form-error")).toBeNull();
  });

  it("lists what no input takes on the form's own line, and the detail when no field is named", () => {
    const f = form();
    showProblems(f, refused(400, [{ field: "owner", reason: "unknown" }]));
    expect(f.querySelector(".form-error")?.textContent).toBe("owner: unknown");
    showProblems(f, refused(403, [], "Your role does not allow this."));
    expect(f.querySelector(".form-error")?.textContent).toBe("Your role does not allow this.");
    expect(f.querySelector(".field-error[data-for='code']")?.textContent).toBe("");
  });

  it("on a 409 says nothing was saved and keeps what the user typed", () => {
    const f = form();
    const input = f.querySelector<HTMLInputElement>("[name='code']")!;
    input.value = "P-typed";
    showProblems(f, refused(409, [], "Someone changed this meanwhile."));
    expect(f.querySelector(".form-error")?.textContent).toBe(`Someone changed this meanwhile. ${KEPT_ON_CONFLICT}`);
    expect(input.value).toBe("P-typed");
  });

  it("clears the earlier errors, and leaves errors that are not the API's to the caller", () => {
    const f = form();
    showProblems(f, refused(400, [{ field: "code", reason: "too long" }]));
    clearProblems(f);
    expect(f.querySelector(".field-error[data-for='code']")?.textContent).toBe("");
    expect(f.querySelector(".invalid")).toBeNull();
    expect(showProblems(f, new Error("offline"))).toBe(false);
  });
});
