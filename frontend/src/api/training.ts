// Client of the model registry and retraining API (training/views.py). The shapes follow training/serializers.py
// (ModelVersion, TrainingJob, the retrain policy as a schedule) and aicell.models.Job; the admin page shows whatever
// of them the server has and says so where an endpoint is missing.

import { api, fetchAll, withQuery } from "./http";
import type { Job } from "./jobs";

export interface ModelVersion {
  id: number;
  stage: "detector" | "countability" | "classifier";
  profile: string;
  architecture: string;
  status: "candidate" | "active" | "retired";
  metrics: Record<string, unknown>;
  parent: number | null;
  status_reason: string;
  created_at: string;
  promoted_at: string | null;
  /** plot images (learning curves, confusion matrix), when the server offers them */
  plots?: Array<{ name: string; url: string }>;
}

export interface TrainingJob extends Job {
  /** one stage, "all", or stages joined by "+" */
  stage?: string;
  stages?: string[];
  profile?: string;
  current_stage?: string;
  epoch?: number | null;
  epochs?: number | null;
  loss?: number | null;
  model_version?: number | null;
  model_versions?: number[];
}

export interface Schedule {
  id: number;
  name: string;
  enabled: boolean;
  [detail: string]: unknown;
}

export const STAGES = ["detector", "countability", "classifier"] as const;
export const PROFILES = ["cpu", "paper"] as const;

export const training = {
  models: () => fetchAll<ModelVersion>(withQuery("/api/v1/model-versions", { ordering: "-id" })),
  jobs: () => fetchAll<TrainingJob>(withQuery("/api/v1/training-jobs", { ordering: "-id" })),
  launch: (body: { stage: string; profile: string }) => api.post<TrainingJob>("/api/v1/training-jobs", body),
  cancel: (id: number) => api.post<TrainingJob>(`/api/v1/training-jobs/${id}/cancel`),
  schedules: () => fetchAll<Schedule>("/api/v1/training-schedules"),
  setSchedule: (id: number, enabled: boolean) => api.patch<Schedule>(`/api/v1/training-schedules/${id}`, { enabled }),
};

/** Scalar metrics as "name: value" rows, nested objects flattened with dots ("val.accuracy"). */
export function metricRows(metrics: Record<string, unknown>, prefix = ""): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(metrics)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (typeof value === "number") rows.push([key, Number.isInteger(value) ? String(value) : value.toFixed(4)]);
    else if (typeof value === "string" || typeof value === "boolean") rows.push([key, String(value)]);
    else if (value && typeof value === "object" && !Array.isArray(value))
      rows.push(...metricRows(value as Record<string, unknown>, key));
  }
  return rows;
}
