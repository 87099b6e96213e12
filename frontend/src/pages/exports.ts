// Researcher: build an export (COCO, YOLO, ...) with filters (sources, cases, splits, classes), follow its progress, download.

import { cases as caseApi } from "../api/foundation";
import { EXPORT_FORMATS, EXPORT_SOURCES, exportsApi, SPLITS, type ExportJob } from "../api/exports";
import { isMissingEndpoint } from "../api/http";
import { pollJob } from "../api/jobs";
import type { Page } from "../context";
import { clear, formatDate, h } from "../ui/dom";
import { showError, showInfo } from "../ui/feedback";
import { jobLine } from "../ui/jobs";
import { bindKeys } from "../ui/keys";

function checkboxes(name: string, values: readonly string[], checked: readonly string[]): HTMLElement {
  return h(
    "fieldset",
    { class: "checks" },
    h("legend", {}, name),
    values.map((value) =>
      h("label", {}, h("input", { type: "checkbox", name, value, checked: checked.includes(value) }), ` ${value}`),
    ),
  );
}

/** The values of `name`'s checkboxes that are checked, in the order of `values`. */
function checkedValues<T extends string>(form: HTMLElement, name: string, values: readonly T[]): T[] {
  const checked = new Set(
    [...form.querySelectorAll<HTMLInputElement>(`input[name="${name}"]:checked`)].map((input) => input.value),
  );
  return values.filter((value) => checked.has(value));
}

function exportLine(job: ExportJob): HTMLElement {
  const download = job.download_url
    ? h("a", { class: "button", href: job.download_url, download: "", id: `download-${job.id}` }, "Download (zip)")
    : null;
  return jobLine(`Export #${job.id}`, job, download);
}

export const exportsPage: Page = async (root, _params, context) => {
  const taxonomy = await context.taxonomy();
  root.append(h("h1", {}, "Export"));
  let previous: ExportJob[];
  try {
    previous = await exportsApi.list();
  } catch (error) {
    if (isMissingEndpoint(error)) {
      root.append(
        h(
          "p",
          { class: "unavailable" },
          "The export API is not available on this server yet (it arrives with the dataset interchange issue).",
        ),
      );
      return;
    }
    throw error;
  }
  const caseList = (await caseApi.list()).results;
  const controller = new AbortController();
  const cases = h(
    "select",
    { multiple: true, size: 6, id: "export-cases", "aria-label": "cases (none selected: all)" },
    caseList.map((c) => h("option", { value: c.code }, `${c.code} (${c.confirmed_diagnosis || "–"})`)),
  );
  const classes = h(
    "select",
    { multiple: true, size: 8, id: "export-classes", "aria-label": "classes (none selected: all)" },
    taxonomy.classes.map((c) => h("option", { value: c.name }, c.name)),
    h("option", { value: "uncountable" }, "uncountable"),
    h("option", { value: "unclassified" }, "unclassified"),
  );
  const modelVersion = h("input", {
    type: "number",
    min: 1,
    id: "export-model",
    placeholder: "newest",
    style: { width: "7rem" },
  });
  const format = h(
    "select",
    { id: "export-format", "aria-label": "format" },
    EXPORT_FORMATS.map((f) => h("option", { value: f.value }, f.label)),
  );
  const submit = h("button", { class: "primary", type: "submit" }, "Build export");
  const form = h(
    "form",
    { class: "card export-form" },
    h(
      "div",
      { class: "form-row" },
      checkboxes("sources", EXPORT_SOURCES, ["consensus"]),
      checkboxes("splits", SPLITS, []),
    ),
    h(
      "div",
      { class: "form-row" },
      h("label", {}, "Cases (none: all)", cases),
      h("label", {}, "Classes (none: all)", classes),
      h("label", {}, "Model version (predictions)", modelVersion),
      h("label", {}, "Format", format),
    ),
    h(
      "p",
      { class: "muted small" },
      "Exports are de-identified: pseudonymous codes only, images re-encoded without metadata.",
    ),
    submit,
  );
  const current = h("div", { id: "export-progress", role: "status" });
  const history = h("div", { id: "export-history" });
  root.append(form, current, h("h2", {}, "Earlier exports"), history);

  const renderHistory = (jobs: ExportJob[]): void => {
    clear(
      history,
      jobs.length
        ? jobs.map((job) =>
            h(
              "div",
              {},
              exportLine(job),
              h("span", { class: "muted small" }, ` created ${formatDate(job.created_at)}`),
            ),
          )
        : h("p", { class: "muted" }, "None yet."),
    );
  };
  renderHistory(previous);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const job = await exportsApi.create({
        sources: checkedValues(form, "sources", EXPORT_SOURCES),
        splits: checkedValues(form, "splits", SPLITS),
        cases: [...cases.selectedOptions].map((o) => o.value),
        classes: [...classes.selectedOptions].map((o) => o.value),
        model_version: modelVersion.value ? Number(modelVersion.value) : null,
        format: EXPORT_FORMATS.find((f) => f.value === format.value)?.value ?? "coco",
      });
      const cancel = h("button", { class: "danger", type: "button" }, "Cancel");
      cancel.addEventListener("click", async () => {
        try {
          await exportsApi.cancel(job.id);
          showInfo(`Export #${job.id}: cancelling.`);
        } catch (error) {
          showError(error, "Cancelling the export");
        }
      });
      const line = h("div");
      clear(current, line, cancel);
      const last = await pollJob<ExportJob>(
        exportsApi.url(job.id),
        (update) => clear(line, exportLine(update)),
        controller.signal,
      );
      cancel.remove();
      if (last.status === "succeeded") showInfo(`Export #${last.id} is ready to download.`);
      else if (last.status === "failed") showError(new Error(last.error || "The export failed."), `Export #${last.id}`);
      renderHistory(await exportsApi.list());
    } catch (error) {
      if (!controller.signal.aborted) showError(error, "Export");
    } finally {
      submit.disabled = false;
    }
  });

  const unbind = bindKeys("global", null, {});
  return () => {
    controller.abort();
    unbind();
  };
};
