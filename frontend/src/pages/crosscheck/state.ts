// The cross-check's state, pure: which conflicts wait for whom, who may decide what, and the bodies sent.

import type { DecidedCell, ResolveBody, ReviewConflict } from "../../api/review";
import type { Box } from "../../api/shapes";
import { boxUnion } from "../../logic/geometry";

const UNSETTLED = new Set<string>(["open", "escalated"]);

export function isSettled(conflict: Pick<ReviewConflict, "status">): boolean {
  return !UNSETTLED.has(conflict.status);
}

/** What the reader may do with a conflict: concede or keep (its annotators), decide (an adjudicator), or read. */
export type Part = "annotator" | "adjudicator" | "reader";

export function partIn(conflict: Pick<ReviewConflict, "your_side">, adjudicator: boolean): Part {
  if (conflict.your_side) return "annotator";
  return adjudicator ? "adjudicator" : "reader";
}

/** Whether the conflict waits for this reader: an adjudicator for every unsettled one, an annotator for an answer. */
export function waitsFor(conflict: ReviewConflict, adjudicating: boolean): boolean {
  if (adjudicating) return !isSettled(conflict);
  return conflict.status === "open" && conflict.your_side !== null && !conflict[conflict.your_side].decision;
}

export interface FieldRow {
  field: number;
  conflicts: ReviewConflict[];
  waiting: number;
  open: number;
  escalated: number;
  settled: number;
}

/** The list page's rows: one per field with conflicts, those waiting for the reader first. */
export function fieldRows(conflicts: readonly ReviewConflict[], adjudicating: boolean): FieldRow[] {
  const byField = new Map<number, ReviewConflict[]>();
  for (const conflict of conflicts) byField.set(conflict.field, [...(byField.get(conflict.field) ?? []), conflict]);
  return [...byField.entries()]
    .map(([field, list]) => ({
      field,
      conflicts: list,
      waiting: list.filter((c) => waitsFor(c, adjudicating)).length,
      open: list.filter((c) => c.status === "open").length,
      escalated: list.filter((c) => c.status === "escalated").length,
      settled: list.filter(isSettled).length,
    }))
    .sort((a, b) => b.waiting - a.waiting || a.field - b.field);
}

/** The conflict a field's page opens at: the first unsettled one (else the first). */
export function firstUnsettled(list: readonly ReviewConflict[]): number {
  return Math.max(
    0,
    list.findIndex((c) => !isSettled(c)),
  );
}

/** After a decision: the next unsettled conflict after `index`, or `index` when none is left after it. */
export function nextUnsettled(list: readonly ReviewConflict[], index: number): number {
  const next = list.findIndex((c, i) => i > index && !isSettled(c));
  return next >= 0 ? next : index;
}

/** The smallest box around both versions (the region both cards show). */
export function regionOf(conflict: ReviewConflict): Box {
  return boxUnion([conflict.a.cell, conflict.b.cell].filter((c): c is NonNullable<typeof c> => c !== null));
}

/** An adjudicator's own decision: the conflict's box (A's, else B's) with `classId`; null without a box. */
export function customDecision(conflict: ReviewConflict, classId: number): ResolveBody | null {
  const box = conflict.a.cell ?? conflict.b.cell;
  if (!box) return null;
  const cell: DecidedCell = {
    x: box.x,
    y: box.y,
    width: box.width,
    height: box.height,
    countable: true,
    cell_class: classId,
  };
  return { decision: "custom", cell };
}

/** The body sent: an adjudicator's reason goes with the decision (annotators give none). */
export function withReason(body: ResolveBody, reason: string, conflict: ReviewConflict): ResolveBody {
  const text = reason.trim();
  return text && !conflict.your_side ? { ...body, reason: text } : body;
}
