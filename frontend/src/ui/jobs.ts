// One line for a long-running job: status, a progress bar while it runs, its message or error.

import { FINISHED, type Job } from "../api/jobs";
import { h } from "./dom";

export function jobLine(label: string, job: Job, ...extra: Array<Node | null>): HTMLElement {
  const running = !FINISHED.has(job.status);
  return h(
    "div",
    { class: `job ${job.status}`, dataset: { job: String(job.id), status: job.status } },
    h("strong", {}, label),
    ` · ${job.status}`,
    running ? h("progress", { max: 100, value: job.progress, "aria-label": `${label} progress` }) : null,
    running ? ` ${Math.round(job.progress)}%` : null,
    job.message ? h("span", { class: "muted small" }, ` · ${job.message}`) : null,
    job.error ? h("div", { class: "form-error" }, job.error) : null,
    ...extra,
  );
}
