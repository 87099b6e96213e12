// Client of the COCO export API (researchers and admins): 202 with a job, polled until its file can be downloaded.

import { api, fetchAll, withQuery } from "./http";
import type { Job } from "./jobs";

export interface ExportJob extends Job {
  download_url: string | null;
}

export interface ExportRequest {
  /** consensus (default), annotations, predictions */
  sources: string[];
  /** case codes; empty: all */
  cases: string[];
  /** train, val, test, unassigned; empty: all */
  splits: string[];
  /** class names, "uncountable", "unclassified"; empty: all */
  classes: string[];
  model_version: number | null;
}

export const EXPORT_SOURCES = ["consensus", "annotations", "predictions"] as const;
export const SPLITS = ["train", "val", "test", "unassigned"] as const;

export const exportsApi = {
  list: () => fetchAll<ExportJob>(withQuery("/api/v1/exports", { ordering: "-id" })),
  create: (body: ExportRequest) => api.post<ExportJob>("/api/v1/exports", body),
  url: (id: number) => `/api/v1/exports/${id}`,
  cancel: (id: number) => api.post<ExportJob>(`/api/v1/exports/${id}/cancel`),
};
