// Forms whose errors are the server's: each problem the API names (`errors: [{field, reason}]`) shows next to its
// input, anything else above the buttons. Inputs carry `name` = the API's field name.

import type { FieldProblem } from "../api/http";
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

/** Clears the form's earlier errors. */
export function clearProblems(form: HTMLElement): void {
  for (const element of form.querySelectorAll<HTMLElement>(".field-error, .form-error")) element.textContent = "";
  for (const element of form.querySelectorAll(".invalid")) element.classList.remove("invalid");
}

/**
 * Shows an API error on the form: each named field's reason next to it, the rest (and the detail when no field
 * took a reason) in the form's `.form-error`. Returns false when the error is not the API's (the caller shows it).
 */
export function showProblems(form: HTMLElement, error: unknown): boolean {
  clearProblems(form);
  if (!(error instanceof Error) || !("problems" in error)) return false;
  const problems = (error as Error & { problems: FieldProblem[] }).problems;
  const general: string[] = [];
  for (const problem of problems) {
    const slot = form.querySelector<HTMLElement>(`.field-error[data-for="${CSS.escape(problem.field)}"]`);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${problem.reason}` : problem.reason;
      form.querySelector(`[name="${CSS.escape(problem.field)}"]`)?.classList.add("invalid");
    } else {
      general.push(
        problem.field && problem.field !== "non_field_errors" ? `${problem.field}: ${problem.reason}` : problem.reason,
      );
    }
  }
  if (!problems.length || general.length) {
    let box = form.querySelector<HTMLElement>(".form-error");
    if (!box) {
      box = h("p", { class: "form-error", role: "alert" });
      form.append(box);
    }
    box.textContent = [problems.length ? "" : error.message, ...general].filter(Boolean).join(" ");
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
