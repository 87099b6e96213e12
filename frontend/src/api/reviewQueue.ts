// The review queue's items: the model's least certain cells that I have not decided yet.
//
// Until the review-queue API lands (its own issue), the queue is built from the foundation API: prediction cells
// ordered by confidence, minus the ones already taken into my sets and the fields I submitted or that reached
// consensus. Only `loadReviewQueue` needs to change when that API exists.

import { annotationSets, cells, fields } from "./foundation";
import { myAssignedFields } from "./review";
import type { AnnotationSet, Cell, Field, Me } from "./types";

export interface ReviewItem {
  cell: Cell;
  field: Field;
  /** my set on the field (null: none yet) */
  mySet: AnnotationSet | null;
}

export interface ReviewQueue {
  items: ReviewItem[];
  source: string;
}

const CANDIDATES = 200;

async function each<K, V>(keys: K[], load: (key: K) => Promise<V>): Promise<Map<K, V>> {
  const values = await Promise.all(keys.map(load));
  return new Map(keys.map((key, index) => [key, values[index]]));
}

export async function loadReviewQueue(me: Me, limit = 50): Promise<ReviewQueue> {
  const page = await cells.page({ kind: "prediction", ordering: "confidence", page_size: CANDIDATES });
  const candidates = page.results.filter((cell) => cell.confidence !== null);
  const sets = await each([...new Set(candidates.map((c) => c.annotation_set))], (id) => annotationSets.get(id));
  const fieldIds = [...new Set([...sets.values()].map((s) => s.field))];
  const [fieldById, mySets, assigned] = await Promise.all([
    each(fieldIds, (id) => fields.get(id)),
    annotationSets.list({ kind: "annotator", annotator: me.id ?? undefined }),
    myAssignedFields(),
  ]);
  const mySetByField = new Map(mySets.filter((s) => fieldIds.includes(s.field)).map((s) => [s.field, s]));
  const myCells = await each(
    [...mySetByField.values()].map((s) => s.id),
    (id) => annotationSets.cells(id),
  );
  const taken = new Set<number>();
  for (const { cells: mine } of myCells.values())
    for (const cell of mine) if (cell.source_cell !== null) taken.add(cell.source_cell);
  // Of several prediction runs on a field, only the newest one's cells are suggestions.
  const newestSet = new Map<number, number>();
  for (const set of sets.values()) newestSet.set(set.field, Math.max(newestSet.get(set.field) ?? 0, set.id));

  const items: ReviewItem[] = [];
  for (const cell of candidates) {
    const set = sets.get(cell.annotation_set) as AnnotationSet;
    const field = fieldById.get(set.field) as Field;
    const mySet = mySetByField.get(field.id) ?? null;
    if (taken.has(cell.id) || newestSet.get(field.id) !== set.id) continue;
    if (field.status === "consensus" || (mySet && mySet.status !== "draft")) continue;
    if (assigned && !assigned.has(field.id)) continue; // double review: only my assigned fields
    items.push({ cell, field, mySet });
    if (items.length >= limit) break;
  }
  return { items, source: `the ${candidates.length} least confident model cells (foundation API)` };
}
