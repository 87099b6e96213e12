// Each role's home: what needs them now, from one summary request (GET /api/v1/home), with links to the pages
// where the work is done. The annotator's and adjudicator's worklist follows it on the same address (pages/index).

import { home, type HomeSummary } from "../api/lab";
import type { Page } from "../context";
import { h } from "../ui/dom";

function stat(id: string, value: number | string, label: string, href?: string, urgent = false): HTMLElement {
  const inner = [h("span", { class: "stat-value" }, String(value)), h("span", { class: "stat-label" }, label)];
  return h(
    "div",
    { class: `home-stat${urgent ? " urgent" : ""}`, dataset: { stat: id } },
    href ? h("a", { href }, inner) : inner,
  );
}

function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function blocks(summary: HomeSummary): HTMLElement[] {
  const out: HTMLElement[] = [];
  const { admin, adjudicator, annotator, researcher } = summary;
  if (admin) {
    out.push(
      h(
        "section",
        { class: "card home-block", id: "home-admin" },
        h("h2", {}, "Lab admin"),
        h(
          "div",
          { class: "home-stats" },
          stat(
            "waiting",
            admin.fields_waiting_for_assignment,
            "fields waiting for assignment",
            "/assign",
            admin.fields_waiting_for_assignment > 0,
          ),
          stat("running", admin.running_jobs.count, `jobs running (${admin.queued_jobs} queued)`, "/models"),
          stat("failed", admin.failed_jobs.count, "jobs failed", undefined, admin.failed_jobs.count > 0),
          stat("storage", bytes(admin.storage.image_bytes), `in ${admin.storage.fields} field images`),
        ),
        admin.failed_jobs.recent.length
          ? h(
              "ul",
              { class: "failed-jobs small" },
              admin.failed_jobs.recent.map((job) =>
                h("li", {}, `${job.kind} #${job.id}: ${job.message || "no message"}`),
              ),
            )
          : null,
        h(
          "p",
          {},
          h("a", { class: "button", href: "/intake" }, "Bring fields in"),
          " ",
          h("a", { class: "button", href: "/assign" }, "Distribute work"),
          " ",
          h("a", { class: "button", href: "/users" }, "Users"),
        ),
      ),
    );
  }
  if (adjudicator) {
    out.push(
      h(
        "section",
        { class: "card home-block", id: "home-adjudicator" },
        h("h2", {}, "Adjudication"),
        h(
          "div",
          { class: "home-stats" },
          stat(
            "escalated",
            adjudicator.escalated_conflicts,
            `escalated conflicts on ${adjudicator.fields_with_escalated_conflicts} fields`,
            "/crosscheck",
            adjudicator.escalated_conflicts > 0,
          ),
          stat("adjudication", adjudicator.fields_in_adjudication, "fields in adjudication", "/crosscheck"),
          stat("crosscheck", adjudicator.fields_in_crosscheck, "fields in cross-check", "/crosscheck"),
        ),
      ),
    );
  }
  if (annotator) {
    out.push(
      h(
        "section",
        { class: "card home-block", id: "home-annotator" },
        h("h2", {}, "My work"),
        h(
          "div",
          { class: "home-stats" },
          stat(
            "to-annotate",
            annotator.fields_to_annotate,
            `of ${annotator.assigned_fields} assigned fields to annotate`,
            "#worklist",
            annotator.fields_to_annotate > 0,
          ),
          stat(
            "conflicts",
            annotator.conflicts_waiting,
            `conflicts waiting for me on ${annotator.fields_with_conflicts_waiting} fields`,
            "/crosscheck",
            annotator.conflicts_waiting > 0,
          ),
          stat("review", annotator.review_queue, "cells in the review queue", "/review"),
        ),
      ),
    );
  }
  if (researcher) {
    out.push(
      h(
        "section",
        { class: "card home-block", id: "home-researcher" },
        h("h2", {}, "Research"),
        h(
          "div",
          { class: "home-stats" },
          stat("cases", researcher.cases, `cases (${researcher.cases_with_truth} with reviewed truth)`, "/cases"),
          stat(
            "exports",
            researcher.exports,
            `exports (${researcher.exports_ready} ready, ${researcher.exports_running} running)`,
            "/exports",
          ),
        ),
      ),
    );
  }
  return out;
}

export const homePage: Page = async (root, _params, context) => {
  const summary = await home();
  root.append(h("h1", {}, `Good day, ${context.me.username}`), h("div", { class: "home-blocks" }, blocks(summary)));
};
