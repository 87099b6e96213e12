// The server's field errors shown next to their fields: a form marks each control's wrapper with
// `data-field="<name>"` (the API's `errors[].field`); problems no wrapper names are listed at the form's top.

import { ApiError } from "../api/http";
import { h } from "./dom";

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
