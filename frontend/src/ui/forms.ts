// Forms whose errors are the server's: each problem the API names (`errors: [{field, reason}]`) shows next to its
// input, anything else on the form's own line. Inputs carry `name` = the API's field name; a group of controls
// (checkboxes) is wrapped in an element with `data-field` = that name.

import { ApiError } from "../api/http";
import { h } from "./dom";

type Input = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** A labelled input with the place where the server's reason for it appears. */
export function labelled(label: string, input: Input, hint = ""): HTMLElement {
  return h(
    "label",
    { class: "form-field" },
    h("span", { class: "label" }, label),
    input,
    hint ? h("span", { class: "muted small" }, hint) : null,
    h("span", { class: "field-error", dataset: { for: input.name } }),
  );
}

export function select(name: string, options: readonly (readonly [string, string])[], value = ""): HTMLSelectElement {
  const element = h(
    "select",
    { name, id: name },
    options.map(([optionValue, text]) => h("option", { value: optionValue }, text)),
  );
  element.value = value;
  return element;
}

/** Clears the form's earlier errors (the reasons beside the inputs and the form's own line). */
export function clearProblems(form: HTMLElement): void {
  for (const element of form.querySelectorAll<HTMLElement>(".field-error, .form-error")) element.textContent = "";
  for (const element of form.querySelectorAll(".invalid")) element.classList.remove("invalid");
}

/** Where the reason for the API field `name` goes: `labelled`'s slot, or a slot added to a `data-field` wrapper. */
function slotFor(form: HTMLElement, name: string): HTMLElement | null {
  const slot = form.querySelector<HTMLElement>(`.field-error[data-for="${CSS.escape(name)}"]`);
  if (slot) return slot;
  const wrapper = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(name)}"]`);
  if (!wrapper) return null;
  const added = h("span", { class: "field-error", dataset: { for: name } });
  wrapper.append(added);
  return added;
}

/** The form's own line for what no input takes (created at the form's end on first use). */
function formLine(form: HTMLElement): HTMLElement {
  let box = form.querySelector<HTMLElement>(".form-error");
  if (!box) {
    box = h("p", { class: "form-error", role: "alert" });
    form.append(box);
  }
  return box;
}

export const KEPT_ON_CONFLICT =
  "Nothing was saved and what you entered is kept: change it and send again, or leave it.";

/**
 * Shows an API error on the form: each named field's reason next to its input (a `labelled` input, or a
 * `data-field="<name>"` wrapper; "stages[0]" and "stages.0" go to "stages"), the rest (and the detail when no field
 * took a reason) in the form's `.form-error`. A 409 (someone changed the data meanwhile, or it exists already)
 * says so and that the entries are kept: the form is never reset on an error, the user chooses what to do next.
 * Returns false when the error is not the API's (the caller shows it).
 */
export function showProblems(form: HTMLElement, error: unknown): boolean {
  clearProblems(form);
  if (!(error instanceof ApiError)) return false;
  const general: string[] = [];
  for (const problem of error.problems) {
    const name = problem.field.split(/[.[]/)[0];
    const slot = name ? slotFor(form, name) : null;
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${problem.reason}` : problem.reason;
      form.querySelector(`[name="${CSS.escape(name)}"]`)?.classList.add("invalid");
      slot.closest("[data-field]")?.classList.add("invalid");
    } else {
      general.push(name && name !== "non_field_errors" ? `${problem.field}: ${problem.reason}` : problem.reason);
    }
  }
  const conflict = error.status === 409;
  if (!error.problems.length || general.length || conflict) {
    const lines = [error.problems.length ? "" : error.message, ...general, conflict ? KEPT_ON_CONFLICT : ""];
    formLine(form).textContent = lines.filter(Boolean).join(" ");
  }
  return true;
}

/** The form's values by input name (empty strings left out). */
export function formValues(form: HTMLFormElement): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (typeof value === "string" && value.trim() !== "") values[key] = value.trim();
  }
  return values;
}
