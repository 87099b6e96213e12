// Client of the model registry, retraining and pretraining API (training/views.py). The shapes follow
// training/serializers.py (ModelVersion, TrainingJob, PretrainingJob, StartingPoint, the retrain policy as a
// schedule) and aicell.models.Job; the admin page shows whatever of them the server has and says so where an endpoint
// is missing.

import { api, fetchAll, withQuery } from "./http";
import type { components } from "./types";

type Schemas = components["schemas"];

/** A model version; the schema documents the `metrics` JSON column as any value, the server stores an object. */
export type ModelVersion = Omit<Schemas["ModelVersion"], "metrics"> & { readonly metrics: Record<string, unknown> };
/** A training job as the list sends it (without its log). */
export type TrainingJob = Schemas["TrainingJobList"];
export type Schedule = Schemas["TrainingSchedule"];
/** A self-supervised pretraining job as the list sends it (without its log). */
export type PretrainingJob = Schemas["PretrainingJobList"];
export type StartingPoint = Schemas["StartingPoint"];
export type PretrainingRequest = Schemas["PretrainingRequestRequest"];

export const PRETRAIN_STAGES: readonly Schemas["PretrainingRequestStageEnum"][] = [
  "classifier",
  "countability",
  "detector-backbone",
];

export const STAGES: readonly Schemas["StagesEnum"][] = ["detector", "countability", "classifier"];
export const PROFILES = ["cpu", "paper", "paper-retinanet"] as const;

export const training = {
  models: () => fetchAll<ModelVersion>(withQuery("/api/v1/model-versions", { ordering: "-id" })),
  jobs: () => fetchAll<TrainingJob>(withQuery("/api/v1/training-jobs", { ordering: "-id" })),
  launch: (body: Schemas["TrainingRequestRequest"]) => api.post<TrainingJob>("/api/v1/training-jobs", body),
  cancel: (id: number) => api.post<TrainingJob>(`/api/v1/training-jobs/${id}/cancel`),
  schedules: () => fetchAll<Schedule>("/api/v1/training-schedules"),
  setSchedule: (id: number, enabled: boolean) => api.patch<Schedule>(`/api/v1/training-schedules/${id}`, { enabled }),
  updateSchedule: (id: number, changes: Partial<Schedule>) =>
    api.patch<Schedule>(`/api/v1/training-schedules/${id}`, changes),
  pretrainingJobs: () => fetchAll<PretrainingJob>(withQuery("/api/v1/pretraining-jobs", { ordering: "-id" })),
  pretrain: (body: PretrainingRequest) => api.post<PretrainingJob>("/api/v1/pretraining-jobs", body),
  cancelPretraining: (id: number) => api.post<PretrainingJob>(`/api/v1/pretraining-jobs/${id}/cancel`),
  startingPoints: () => fetchAll<StartingPoint>("/api/v1/starting-points"),
  promote: (id: number, reason: string) => api.post<ModelVersion>(`/api/v1/model-versions/${id}/promote`, { reason }),
  rollback: (id: number, reason: string) => api.post<ModelVersion>(`/api/v1/model-versions/${id}/rollback`, { reason }),
};

export const PROMOTE_MODES = ["auto", "never", "force"] as const;

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
