// Client of the double-review API: assignments (my worklist), conflicts side by side and their resolution.

import { api, fetchAll, isMissingEndpoint, request, withQuery, type Page } from "./http";
import type { Box } from "./shapes";
import type { components } from "./types";

type Schemas = components["schemas"];

export type Assignment = Schemas["Assignment"];
export type ConflictSide = Schemas["ConflictSide"];

/** The cell an adjudicator decides on (a `custom` decision's `cell`, a settled conflict's `final_cell`). */
export type DecidedCell = Box & { countable: boolean; cell_class: number | null };

/** A conflict; the schema documents the `final_cell` JSON column as any value, the server stores a cell or null. */
export type ReviewConflict = Omit<Schemas["Conflict"], "final_cell"> & { readonly final_cell: DecidedCell | null };

/** The resolve body; the schema documents a custom decision's `cell` as a free object. */
export interface ResolveBody {
  decision: Schemas["DecisionEnum"];
  cell?: DecidedCell;
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
/** Whether the field is assigned to me (one row asked for, however long my worklist); null without double review. */
export async function assignedToMe(fieldId: number): Promise<boolean | null> {
  try {
    const url = withQuery("/api/v1/assignments", { mine: 1, field: fieldId, page_size: 1 });
    return (await api.get<Page<Assignment>>(url)).count > 0;
  } catch (error) {
    if (isMissingEndpoint(error)) return null;
    throw error;
  }
}

export async function myAssignedFields(): Promise<Set<number> | null> {
  try {
    return new Set((await assignments.mine()).map((assignment) => assignment.field));
  } catch (error) {
    if (isMissingEndpoint(error)) return null;
    throw error;
  }
}
