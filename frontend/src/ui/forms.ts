// Forms whose errors are the server's: each problem the API names (`errors: [{field, reason}]`) shows next to its
// input, anything else above the buttons. Inputs carry `name` = the API's field name.

import { ApiError, type FieldProblem } from "../api/http";
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

// A second style for forms built without `labelled`: a form marks each control's wrapper with
// `data-field="<name>"` (the API's `errors[].field`); problems no wrapper names are listed at the form's top.

export function clearFieldErrors(form: HTMLElement): void {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const marked of form.querySelectorAll(".has-error")) marked.classList.remove("has-error");
}

/** Show `error`'s field problems beside their fields; true when it had any (the caller need not show it again). */
export function showFieldErrors(form: HTMLElement, error: unknown): boolean {
  clearFieldErrors(form);
  if (!(error instanceof ApiError) || !error.problems.length) return false;
  const loose: string[] = [];
  for (const problem of error.problems) {
    const name = problem.field.split(/[.[]/)[0];
    const wrapper = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(name)}"]`);
    const text = `${problem.reason.charAt(0).toUpperCase()}${problem.reason.slice(1)}`;
    if (wrapper) {
      wrapper.classList.add("has-error");
      wrapper.append(h("p", { class: "field-error", role: "alert" }, text));
    } else loose.push(problem.field ? `${problem.field}: ${text}` : text);
  }
  if (loose.length) form.prepend(h("p", { class: "field-error", role: "alert" }, loose.join(" ")));
  return true;
}
