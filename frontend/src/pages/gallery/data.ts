// What the gallery shows, from one explicit source (as the report counts it): "consensus" (the truth, read-only),
// "model" (the active classifier's predictions, read-only) or "mine" (my own sets, editable, with the active
// model's suggestions I have not taken over shown apart and not counted). The cells come from the server's gallery
// endpoint, which reads the report's selector, so the counts here are the report's for the same source.

import { galleryCells, type GallerySource } from "../../api/differential";
import { annotationSets, fields as fieldApi, smears } from "../../api/foundation";
import { ApiError } from "../../api/http";
import { myAssignedFields } from "../../api/review";
import type { AnnotationSet, Cell, Field, Me } from "../../api/shapes";
import type { MySet } from "../shared/editing";

export type Scope = "smear" | "case";

export interface FieldCells {
  field: Field;
  mine: MySet;
  suggestions: Cell[];
  truth: Cell[];
}

export interface GalleryData {
  source: GallerySource;
  scope: Scope;
  scopeId: number;
  caseId: number;
  fields: FieldCells[];
  /** the fields assigned to me; null without double review (every field is open to annotators) */
  assigned: Set<number> | null;
}

/** Run `tasks` with at most `limit` in flight, reporting progress. */
async function pool<T>(
  tasks: Array<() => Promise<T>>,
  limit: number,
  report: (done: number, total: number) => void,
): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
      report(++done, tasks.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** The cells of one source by field; the model's suggestions are optional for "mine" (403 when pre-labels are off). */
async function cellsByField(scope: Scope, scopeId: number, source: GallerySource, optional = false) {
  const byField = new Map<number, Cell[]>();
  try {
    for (const cell of (await galleryCells(scope, scopeId, source)).cells) {
      const list = byField.get(cell.field) ?? [];
      list.push(cell);
      byField.set(cell.field, list);
    }
  } catch (error) {
    if (!(optional && error instanceof ApiError && error.status === 403)) throw error;
  }
  return byField;
}

export async function loadGallery(
  scope: Scope,
  scopeId: number,
  me: Me,
  source: GallerySource,
  report: (done: number, total: number) => void,
): Promise<GalleryData> {
  const editing = source === "mine";
  const caseId = scope === "case" ? scopeId : (await smears.get(scopeId)).case;
  const [fieldList, sets, assigned, shown] = await Promise.all([
    fieldApi.list(scope === "case" ? { case: scopeId } : { smear: scopeId }),
    editing
      ? annotationSets.list({ case: caseId, kind: "annotator", annotator: me.id ?? undefined })
      : Promise.resolve([] as AnnotationSet[]),
    editing ? myAssignedFields() : Promise.resolve(null),
    cellsByField(scope, scopeId, editing ? "model" : source, editing),
  ]);
  const fields = await pool(
    fieldList.map((field) => async (): Promise<FieldCells> => {
      const mySet = sets.find((s) => s.field === field.id && s.kind === "annotator" && s.annotator === me.id) ?? null;
      const mine = mySet ? await annotationSets.cells(mySet.id) : null;
      return {
        field,
        mine: { set: mySet, cells: mine?.cells ?? [], version: mine?.version ?? null },
        suggestions: editing ? (shown.get(field.id) ?? []) : [],
        truth: editing ? [] : (shown.get(field.id) ?? []),
      };
    }),
    4,
    report,
  );
  return { source, scope, scopeId, caseId, fields, assigned };
}
