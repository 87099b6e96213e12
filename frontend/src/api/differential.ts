// Client of the differential API (cases/{id}/differential, smears/{id}/differential; JSON, CSV, PDF). The report's
// shape is written out here: the OpenAPI schema documents it as a free object (annotations/reports.py builds it),
// so types.ts has nothing to alias.

import { api, withQuery } from "./http";
import type { Cell } from "./shapes";

export interface ShareJson {
  count: number;
  n: number;
  /** percent 0-100 (null when nothing was counted) */
  percent: number | null;
  ci_low: number | null;
  ci_high: number | null;
  ci_method: string;
}

export interface ClassCountJson {
  class_id: number;
  name: string;
  lineage: string;
  is_blast: boolean;
  share: ShareJson;
}

export interface GroupCountJson {
  name: string;
  class_ids: number[];
  share: ShareJson;
}

export interface DifferentialJson {
  source: string;
  ci_method: string;
  n_cells: number;
  n_counted: number;
  n_uncountable: number;
  n_unclassified: number;
  blasts: GroupCountJson;
  classes: ClassCountJson[];
  lineages: GroupCountJson[];
  me_ratio: { value: number | null; myeloid: number; erythroid: number; reason: string | null };
}

export type SuggestionStatus = "positive" | "negative" | "count_more_cells";

export interface EvidenceJson {
  numerator: string[];
  count: number;
  n_counted: number;
  percent: number | null;
  ci_low: number | null;
  ci_high: number | null;
  operator: string;
  threshold_percent: number | null;
  threshold_count: number | null;
  meets_threshold: boolean | null;
  min_cells: number;
  reasons: string[];
}

export interface SuggestionJson {
  rule_id: string;
  label: string;
  status: SuggestionStatus;
  evidence: EvidenceJson;
  hints: Array<{ id: string; text: string }>;
}

export interface ReportJson {
  subject: {
    kind: "case" | "smear";
    id: number;
    code: string;
    case_id: number;
    case_code: string;
    patient_code: string;
    confirmed_diagnosis: string | null;
    diagnosis_method: string;
    smears: Array<{ id: number; code: string; stain: string; microscope: string }>;
  };
  source: string;
  ci_method: string;
  rule_set: { id: number; name: string; version: number; active: boolean; description: string };
  generated_at: string;
  summary: { status: SuggestionStatus; diagnosis: string | null; text: string; n_counted: number };
  suggestions: SuggestionJson[];
  differential: DifferentialJson;
  provenance: {
    fields_by_source: Record<string, number>;
    model_versions: Array<{ id: number; stage: string; architecture: string; status: string }>;
    annotators: string[];
    imported_from: string[];
  };
  warnings: string[];
  links: { csv: string; pdf: string };
}

export const SOURCES = ["consensus", "consensus+model", "model", "mine"] as const;
export const CI_METHODS = ["exact", "wilson"] as const;

export interface ReportQuery {
  source?: string;
  ci_method?: string;
}

export function differentialReport(kind: "case" | "smear", id: number, query: ReportQuery = {}): Promise<ReportJson> {
  return api.get<ReportJson>(
    withQuery(`/api/v1/${kind === "case" ? "cases" : "smears"}/${id}/differential`, { ...query }),
  );
}

/** The gallery's sources: one at a time, never a blend ("mine": my own annotations). */
export const GALLERY_SOURCES = ["mine", "consensus", "model"] as const;
export type GallerySource = (typeof GALLERY_SOURCES)[number];

export interface GalleryJson {
  source: GallerySource;
  /** the same differential the report shows for this source */
  differential: DifferentialJson;
  warnings: string[];
  cells: Array<Cell & { field: number }>;
}

export function galleryCells(kind: "case" | "smear", id: number, source: GallerySource): Promise<GalleryJson> {
  return api.get<GalleryJson>(withQuery(`/api/v1/${kind === "case" ? "cases" : "smears"}/${id}/gallery`, { source }));
}
