// What the field annotator loads: the field, my set and its cells (or, for someone who does not annotate, the
// field's truth set, read-only), the newest model suggestions, the field's neighbours in its case, and whether the field is
// assigned to me.

import { annotationSets, fields, latestPrediction, type FieldNeighbours } from "../../api/foundation";
import { assignedToMe } from "../../api/review";
import type { AnnotationSet, Cell, Field } from "../../api/shapes";
import type { MySet } from "../shared/editing";

export interface FieldData {
  field: Field;
  /** my set (or the truth set shown read-only) with its cells */
  shown: MySet;
  prediction: AnnotationSet | null;
  suggestions: Cell[];
  /** the field's place among the case's fields */
  neighbours: FieldNeighbours;
  truthLabel: string;
  /** false when double review is on the server and this field is not assigned to me */
  assignedToMe: boolean;
}

export async function loadField(fieldId: number, annotating: boolean, meId: number | null): Promise<FieldData> {
  const field = await fields.get(fieldId);
  const [mySets, prediction, neighbours, truthSets, assigned] = await Promise.all([
    annotating
      ? annotationSets.list({ field: fieldId, kind: "annotator", annotator: meId ?? undefined })
      : Promise.resolve([]),
    latestPrediction(fieldId),
    fields.neighbours(field.case, fieldId),
    annotating
      ? Promise.resolve([])
      : annotationSets
          .list({ field: fieldId })
          .then((sets) => sets.filter((s) => s.kind === "consensus" || s.kind === "imported")),
    annotating ? assignedToMe(fieldId) : Promise.resolve(null),
  ]);
  // Someone who does not annotate sees the field's truth set (read-only) in place of own boxes.
  const shownSet = annotating ? (mySets[0] ?? null) : (truthSets[0] ?? null);
  const [mine, predicted] = await Promise.all([
    shownSet ? annotationSets.cells(shownSet.id) : Promise.resolve({ cells: [], version: null }),
    prediction ? annotationSets.cells(prediction.id) : Promise.resolve({ cells: [], version: null }),
  ]);
  return {
    field,
    shown: { set: shownSet, cells: mine.cells, version: mine.version },
    prediction,
    suggestions: predicted.cells,
    neighbours,
    truthLabel: annotating ? "" : shownSet ? `${shownSet.kind} set` : "no reviewed truth yet",
    assignedToMe: assigned !== false || shownSet !== null,
  };
}
