// Long-running jobs (exports, training): the shared shape of aicell.models.Job, and polling until it finishes.

import { api } from "./http";

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Job {
  id: number;
  status: JobStatus;
  /** 0 to 100 */
  progress: number;
  message: string;
  error: string;
  parameters?: Record<string, unknown>;
  result: Record<string, unknown>;
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

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
