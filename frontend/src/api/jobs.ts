// Long-running jobs (exports, training): the shared shape of aicell.models.Job, and polling until it finishes.

import { api } from "./http";
import type { components } from "./types";

export type JobStatus = components["schemas"]["JobStatusEnum"];

/** What every job of the API carries (export, training, pre-label and import jobs all have these keys). */
export type Job = Pick<
  components["schemas"]["ExportJob"],
  "id" | "status" | "progress" | "message" | "error" | "cancel_requested" | "created_at" | "started_at" | "finished_at"
>;

export const FINISHED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

/**
 * Re-read a job every `interval` ms, telling `onUpdate` each time, until it finishes or `signal` aborts (the page
 * was left). Resolves with the last state read.
 */
export async function pollJob<T extends Job>(
  url: string,
  onUpdate: (job: T) => void,
  signal: AbortSignal,
  interval = 1000,
): Promise<T> {
  for (;;) {
    const job = await api.get<T>(url, { signal });
    onUpdate(job);
    if (FINISHED.has(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, interval));
    if (signal.aborted) return job;
  }
}
