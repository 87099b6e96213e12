// Researcher: build an export (COCO, YOLO, CVAT, Label Studio) with filters (sources, cases, splits, classes), follow its progress, download.
// Only the sources the role may export are offered (annotator work: admins only); the model version of
// predictions is chosen from the distinct classifier versions, the active one by default. The server's field
// errors show next to their fields.

import { cases as caseApi } from "../api/foundation";
import { training, type ModelVersion } from "../api/training";
import { EXPORT_FORMATS, EXPORT_SOURCES, exportsApi, SPLITS, type ExportJob, type ExportSource } from "../api/exports";
import { isMissingEndpoint } from "../api/http";
import { pollJob } from "../api/jobs";
import type { Page } from "../context";
import { clear, formatDate, h } from "../ui/dom";
import { showError, showInfo } from "../ui/feedback";
import { jobLine } from "../ui/jobs";
import { clearProblems, showProblems } from "../ui/forms";
import { bindKeys } from "../ui/keys";

/** The sources a role may export (the server refuses annotator work to anyone but admins). */
export function sourcesFor(isAdmin: boolean): ExportSource[] {
  return EXPORT_SOURCES.filter((source) => isAdmin || source !== "annotations");
}

function sizeWords(bytes: unknown): string {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** An export's filters and outcome in words: "consensus · cases C1 · splits all · 12 images, 180 annotations, 1.2 MiB". */
export function exportSummary(job: ExportJob): string {
  const p = (job.parameters ?? {}) as Record<string, unknown>;
  const r = (job.result ?? {}) as Record<string, unknown>;
  const list = (value: unknown, all: string): string => (Array.isArray(value) && value.length ? value.join(", ") : all);
  const parts = [
    `sources ${list(p.sources, "consensus")}`,
    `cases ${list(p.cases, "all")}`,
    `splits ${list(p.split_all ? [p.split_all] : p.splits, "all")}`,
    `classes ${list(p.classes, "all")}`,
  ];
  const version = r.model_version ?? p.model_version;
  if (version) parts.push(`model version ${version}`);
  if (typeof r.images === "number")
    parts.push(`${r.images} images, ${r.annotations ?? 0} annotations, ${r.predictions ?? 0} predictions`);
  const size = sizeWords(r.bytes);
  if (size) parts.push(size);
  return parts.join(" · ");
}

function checkboxes(name: string, values: readonly string[], checked: readonly string[]): HTMLElement {
  return h(
    "fieldset",
    { class: "checks", dataset: { field: name } },
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
  const format = h(
    "select",
    { id: "export-format", "aria-label": "format" },
    EXPORT_FORMATS.map((f) => h("option", { value: f.value }, f.label)),
  );
  const sources = sourcesFor(context.has("admin"));
  // Distinct classifier versions (predictions are the classifier's), the active one first and chosen by default.
  let versions: ModelVersion[] = [];
  try {
    versions = (await training.models()).filter((v) => v.stage === "classifier");
  } catch {
    versions = [];
  }
  versions.sort((a, b) => Number(b.status === "active") - Number(a.status === "active") || b.id - a.id);
  const modelVersion = h(
    "select",
    { id: "export-model", "aria-label": "model version of the predictions" },
    versions.length ? null : h("option", { value: "" }, "no model version yet"),
    versions.map((v) =>
      h(
        "option",
        { value: String(v.id), selected: v.status === "active" },
        `v${v.id} · ${v.architecture} · ${v.status}${v.status === "active" ? " (default)" : ""}`,
      ),
    ),
  );
  const submit = h("button", { class: "primary", type: "submit" }, "Build export");
  const form = h(
    "form",
    { class: "card export-form" },
    h("div", { class: "form-row" }, checkboxes("sources", sources, ["consensus"]), checkboxes("splits", SPLITS, [])),
    h(
      "div",
      { class: "form-row" },
      h("label", { dataset: { field: "cases" } }, "Cases (none: all)", cases),
      h("label", { dataset: { field: "classes" } }, "Classes (none: all)", classes),
      h("label", { dataset: { field: "model_version" } }, "Model version (predictions)", modelVersion),
      h("label", { dataset: { field: "format" } }, "Format", format),
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
              { class: "export-entry", dataset: { job: String(job.id) } },
              exportLine(job),
              h("span", { class: "muted small" }, ` created ${formatDate(job.created_at)}`),
              h("div", { class: "small export-summary" }, exportSummary(job)),
            ),
          )
        : h("p", { class: "muted" }, "None yet."),
    );
  };
  renderHistory(previous);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    clearProblems(form);
    const chosen = checkedValues(form, "sources", sources);
    try {
      const job = await exportsApi.create({
        sources: chosen,
        splits: checkedValues(form, "splits", SPLITS),
        cases: [...cases.selectedOptions].map((o) => o.value),
        classes: [...classes.selectedOptions].map((o) => o.value),
        model_version: chosen.includes("predictions") && modelVersion.value ? Number(modelVersion.value) : null,
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
      if (!controller.signal.aborted && !showProblems(form, error)) showError(error, "Export");
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
