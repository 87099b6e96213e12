// Client of the double-review API: assignments (my worklist), conflicts side by side and their resolution.

import { api, fetchAll, isMissingEndpoint, request, withQuery } from "./http";
import type { Box } from "./types";

export type Progress = "not_started" | "in_progress" | "submitted" | "pending";

export interface Assignment {
  id: number;
  field: number;
  field_status: string;
  smear: number;
  case: number;
  annotator: number;
  annotator_username: string;
  side: "a" | "b";
  progress: Progress;
  annotation_set: number | null;
  cell_count: number | null;
  submitted_at: string | null;
}

export interface CellVersion extends Box {
  id: number | null;
  countable: boolean;
  cell_class: number | null;
}

export interface ConflictSide {
  annotator: number;
  annotator_username: string;
  cell: CellVersion | null;
  /** "concede", "keep" or "" */
  decision: string;
}

export type ConflictStatus = "open" | "resolved" | "escalated" | "adjudicated";

export interface ReviewConflict {
  id: number;
  field: number;
  kind: "pair" | "only_a" | "only_b";
  kinds: string[];
  iou: number | null;
  status: ConflictStatus;
  version: number;
  a: ConflictSide;
  b: ConflictSide;
  your_side: "a" | "b" | null;
  resolution: string;
  final_cell: (Box & { countable: boolean; cell_class: number | null }) | null;
  reason: string;
  resolved_by_username: string | null;
  resolved_at: string | null;
}

export type AnnotatorDecision = "concede" | "keep";
export type AdjudicatorDecision = "a" | "b" | "none" | "custom";

export interface ResolveBody {
  decision: AnnotatorDecision | AdjudicatorDecision;
  cell?: Box & { countable: boolean; cell_class: number | null };
  reason?: string;
}

export const assignments = {
  mine: () => fetchAll<Assignment>(withQuery("/api/v1/assignments", { mine: 1 })),
};

export const conflicts = {
  list: (query: { status?: string; field?: number; case?: number } = {}) =>
    fetchAll<ReviewConflict>(withQuery("/api/v1/conflicts", { ordering: "id", ...query })),
  ofField: (fieldId: number) => api.get<ReviewConflict[]>(`/api/v1/fields/${fieldId}/conflicts`),
  async resolve(conflict: Pick<ReviewConflict, "id" | "version">, body: ResolveBody): Promise<ReviewConflict> {
    return (
      await request<ReviewConflict>("POST", `/api/v1/conflicts/${conflict.id}/resolve`, {
        json: body,
        ifMatch: conflict.version,
      })
    ).data;
  },
};

/** The fields assigned to me; null on a server without assignments, where every field is open to annotators. */
export async function myAssignedFields(): Promise<Set<number> | null> {
  try {
    return new Set((await assignments.mine()).map((assignment) => assignment.field));
  } catch (error) {
    if (isMissingEndpoint(error)) return null;
    throw error;
  }
}
