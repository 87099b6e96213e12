// The case (or smear) report: differential count table with 95% intervals, lineage totals, blast percentage,
// the diagnosis suggestion with its evidence, and CSV / PDF downloads. Served by the differential API.

import { cases as caseApi } from "../api/foundation";
import {
  CI_METHODS,
  differentialReport,
  SOURCES,
  type ReportJson,
  type ShareJson,
  type SuggestionJson,
} from "../api/differential";
import { describeError, isMissingEndpoint } from "../api/http";
import type { Page } from "../context";
import { clear, formatDate, h, words } from "../ui/dom";
import { showError } from "../ui/feedback";
import { bindKeys } from "../ui/keys";

function pct(share: ShareJson): string {
  return share.percent === null ? "–" : `${share.percent.toFixed(1)}%`;
}

function interval(share: { ci_low: number | null; ci_high: number | null }): string {
  return share.ci_low === null || share.ci_high === null
    ? "–"
    : `${share.ci_low.toFixed(1)}–${share.ci_high.toFixed(1)}%`;
}

const STATUS_WORDS = { positive: "positive", negative: "negative", count_more_cells: "count more cells" } as const;

function suggestionCard(s: SuggestionJson): HTMLElement {
  const e = s.evidence;
  const threshold =
    e.threshold_percent !== null ? `${e.operator} ${e.threshold_percent}%` : `${e.operator} ${e.threshold_count} cells`;
  return h(
    "div",
    { class: `card suggestion ${s.status}`, dataset: { rule: s.rule_id, status: s.status } },
    h("h3", {}, s.label, " ", h("span", { class: `tag ${s.status}` }, STATUS_WORDS[s.status])),
    h(
      "div",
      { class: "small" },
      `${e.numerator.join(" + ")}: ${e.count} of ${e.n_counted} counted`,
      e.percent !== null ? ` = ${e.percent.toFixed(1)}% (95% CI ${interval(e)})` : "",
      ` · rule ${threshold}`,
    ),
    e.reasons.length
      ? h(
          "ul",
          { class: "small" },
          e.reasons.map((r) => h("li", {}, r)),
        )
      : null,
    s.hints.length
      ? h(
          "ul",
          { class: "small muted" },
          s.hints.map((hint) => h("li", {}, `${hint.id}: ${hint.text}`)),
        )
      : null,
  );
}

function renderReport(target: HTMLElement, report: ReportJson): void {
  const d = report.differential;
  const lineageRows = d.lineages.flatMap((lineage) => [
    h(
      "tr",
      { class: "lineage-row" },
      h("td", {}, lineage.name),
      h("td", { class: "num" }, lineage.share.count),
      h("td", { class: "num" }, pct(lineage.share)),
      h("td", { class: "num" }, interval(lineage.share)),
    ),
    ...d.classes
      .filter((cls) => lineage.class_ids.includes(cls.class_id))
      .map((cls) =>
        h(
          "tr",
          { dataset: { class: String(cls.class_id) } },
          h("td", {}, "\u00a0\u00a0", cls.name, cls.is_blast ? h("sup", { class: "warn" }, " blast") : null),
          h("td", { class: "num" }, cls.share.count),
          h("td", { class: "num" }, pct(cls.share)),
          h("td", { class: "num" }, interval(cls.share)),
        ),
      ),
  ]);
  const me =
    d.me_ratio.value === null
      ? `– (${d.me_ratio.reason ?? "undefined"})`
      : `${d.me_ratio.value.toFixed(2)} (${d.me_ratio.myeloid}:${d.me_ratio.erythroid})`;
  clear(
    target,
    h(
      "div",
      { class: "cards" },
      h(
        "div",
        { class: `card summary ${report.summary.status}`, id: "diagnosis" },
        h("h3", {}, "Diagnosis suggestion"),
        h("div", { class: "stat" }, report.summary.text),
        h("div", { class: "muted small" }, `rule set ${report.rule_set.name} v${report.rule_set.version}`),
      ),
      h(
        "div",
        { class: "card", id: "blasts" },
        h("h3", {}, "Blasts"),
        h("div", { class: "stat" }, pct(d.blasts.share)),
        h("div", { class: "small" }, `95% CI ${interval(d.blasts.share)} · ${d.blasts.share.count} of ${d.n_counted}`),
      ),
      h(
        "div",
        { class: "card" },
        h("h3", {}, "Counted cells"),
        h("div", { class: "stat" }, d.n_counted),
        h(
          "div",
          { class: "small muted" },
          `${d.n_uncountable} uncountable, ${d.n_unclassified} unclassified not counted · M:E ${me}`,
        ),
      ),
    ),
    report.warnings.length
      ? h(
          "div",
          { class: "unavailable", role: "note" },
          h(
            "ul",
            {},
            report.warnings.map((w) => h("li", {}, w)),
          ),
        )
      : null,
    h(
      "div",
      { class: "two-col" },
      h(
        "div",
        {},
        h("h2", {}, "Differential count"),
        h(
          "table",
          { class: "grid differential-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Class", "Count", "%", "95% CI"].map((t) => h("th", {}, t)),
            ),
          ),
          h("tbody", {}, lineageRows),
        ),
      ),
      h(
        "div",
        {},
        h("h2", {}, "Evidence by rule"),
        report.suggestions.map(suggestionCard),
        h("h2", {}, "Provenance"),
        h(
          "ul",
          { class: "small" },
          Object.entries(report.provenance.fields_by_source).map(([source, n]) =>
            h("li", {}, `${n} field(s): ${words(source)}`),
          ),
          report.provenance.annotators.length
            ? h("li", {}, `annotators: ${report.provenance.annotators.join(", ")}`)
            : null,
          report.provenance.model_versions.map((m) =>
            h("li", {}, `model ${m.id}: ${m.stage} ${m.architecture} (${m.status})`),
          ),
          h("li", {}, `generated ${formatDate(report.generated_at)}`),
        ),
      ),
    ),
  );
}

export const reportPage: Page = async (root, params, context) => {
  const caseId = Number(params.id);
  const query = new URLSearchParams(location.search);
  const theCase = await caseApi.get(caseId);
  const source = h(
    "select",
    { id: "source", "aria-label": "cells counted" },
    // "mine" (my own annotations) only for annotators: nobody else has work of their own to count.
    SOURCES.filter((s) => s !== "mine" || context.has("annotator")).map((s) =>
      h("option", { value: s, selected: s === (query.get("source") ?? "consensus") }, s),
    ),
  );
  const ci = h(
    "select",
    { id: "ci-method", "aria-label": "interval method" },
    CI_METHODS.map((m) => h("option", { value: m, selected: m === query.get("ci_method") }, m)),
  );
  const downloads = h("span", { class: "downloads" });
  const body = h("div", { id: "report-body" }, h("p", { class: "muted" }, "Counting…"));
  root.append(
    h(
      "h1",
      {},
      `Case ${theCase.code}`,
      h(
        "span",
        { class: "muted small" },
        ` · patient ${theCase.patient_code} · confirmed diagnosis ${theCase.confirmed_diagnosis || "–"}`,
      ),
    ),
    h(
      "div",
      { class: "form-row" },
      h("label", {}, "Cells counted", source),
      h("label", {}, "95% interval", ci),
      downloads,
      h("a", { class: "button", href: `/gallery/case/${caseId}` }, "Cell gallery"),
    ),
    body,
  );

  const load = async (): Promise<void> => {
    body.replaceChildren(h("p", { class: "muted" }, "Counting…"));
    try {
      const report = await differentialReport("case", caseId, { source: source.value, ci_method: ci.value });
      downloads.replaceChildren(
        h("a", { class: "button", href: report.links.csv, download: "", id: "download-csv" }, "Download CSV"),
        h(
          "a",
          // A file to keep (the server sends it as an attachment), not a tab to read it in.
          { class: "button", href: report.links.pdf, download: "", id: "download-pdf" },
          "Download PDF",
        ),
      );
      renderReport(body, report);
    } catch (error) {
      if (isMissingEndpoint(error)) {
        body.replaceChildren(
          h(
            "p",
            { class: "unavailable" },
            "The differential API is not available on this server yet (it arrives with the differential count issue).",
          ),
        );
      } else {
        body.replaceChildren(h("p", { class: "empty" }, describeError(error)));
        showError(error, "Differential count");
      }
    }
  };
  for (const control of [source, ci])
    control.addEventListener("change", () => {
      history.replaceState(null, "", `?source=${encodeURIComponent(source.value)}&ci_method=${ci.value}`);
      void load();
    });
  await load();
  return bindKeys("global", null, {});
};
