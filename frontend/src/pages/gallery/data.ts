// What the gallery shows, loaded from the foundation API: the fields of a smear or case, and on each field my set,
// the newest prediction (the model's suggestions) and, for those who do not annotate, the truth.

import { annotationSets, fields as fieldApi, smears } from "../../api/foundation";
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

function newestPrediction(sets: AnnotationSet[]): AnnotationSet | undefined {
  return sets.filter((s) => s.kind === "prediction").sort((a, b) => b.id - a.id)[0];
}

export async function loadGallery(
  scope: Scope,
  scopeId: number,
  me: Me,
  annotating: boolean,
  report: (done: number, total: number) => void,
): Promise<GalleryData> {
  const caseId = scope === "case" ? scopeId : (await smears.get(scopeId)).case;
  const [fieldList, sets, assigned] = await Promise.all([
    fieldApi.list(scope === "case" ? { case: scopeId } : { smear: scopeId }),
    annotationSets.list({ case: caseId }),
    annotating ? myAssignedFields() : Promise.resolve(null),
  ]);
  const fields = await pool(
    fieldList.map((field) => async (): Promise<FieldCells> => {
      const ofField = sets.filter((s) => s.field === field.id);
      const mySet = ofField.find((s) => s.kind === "annotator" && s.annotator === me.id) ?? null;
      const prediction = newestPrediction(ofField);
      const truthSet = ofField.find((s) => s.kind === "consensus" || s.kind === "imported");
      const [mine, predicted, truth] = await Promise.all([
        mySet ? annotationSets.cells(mySet.id) : null,
        prediction ? annotationSets.cells(prediction.id) : null,
        !annotating && truthSet ? annotationSets.cells(truthSet.id) : null,
      ]);
      return {
        field,
        mine: { set: mySet, cells: mine?.cells ?? [], version: mine?.version ?? null },
        suggestions: predicted?.cells ?? [],
        truth: truth?.cells ?? [],
      };
    }),
    4,
    report,
  );
  return { scope, scopeId, caseId, fields, assigned };
}
