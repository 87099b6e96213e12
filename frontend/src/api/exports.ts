// Client of the export API (COCO, YOLO, ...) (researchers and admins): 202 with a job, polled until its file can be downloaded.

import { api, fetchAll, withQuery } from "./http";
import type { components } from "./types";

type Schemas = components["schemas"];

export type ExportJob = Schemas["ExportJob"];
export type ExportRequest = Schemas["ExportRequestRequest"];

export type ExportSource = Schemas["SourcesEnum"];
export const EXPORT_SOURCES: readonly ExportSource[] = ["consensus", "annotations", "predictions"];
// The formats the server writes (the schema's enum); the first is the default.
export const EXPORT_FORMATS: readonly { value: Schemas["ExportRequestFormatEnum"]; label: string }[] = [
  { value: "coco", label: "COCO" },
  { value: "yolo", label: "YOLO (Ultralytics)" },
  { value: "cvat", label: "CVAT for images 1.1" },
  { value: "labelstudio", label: "Label Studio JSON" },
];
export const SPLITS: readonly Schemas["SplitsEnum"][] = ["train", "val", "test", "unassigned"];

export const exportsApi = {
  list: () => fetchAll<ExportJob>(withQuery("/api/v1/exports", { ordering: "-id" })),
  create: (body: ExportRequest) => api.post<ExportJob>("/api/v1/exports", body),
  url: (id: number) => `/api/v1/exports/${id}`,
  cancel: (id: number) => api.post<ExportJob>(`/api/v1/exports/${id}/cancel`),
};
