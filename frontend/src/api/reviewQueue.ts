// The review queue's items: the model's least certain cells that I have not decided yet.
//
// From the review-queue API (`GET /api/v1/review-queue`, the pre-label issue) when the server has it: the next
// cells by a strategy, balanced across classes and reserved for me. On a server without it, the queue is built from
// the foundation API: prediction cells by confidence, minus those already taken into my sets and fields I submitted
// or that have truth. Either way a decision is a cell of my own set whose source_cell is the model's cell.

import { annotationSets, cells, fields } from "./foundation";
import { api, isMissingEndpoint, withQuery } from "./http";
import { myAssignedFields } from "./review";
import type { AnnotationSet, Field, Me, Suggestion } from "./shapes";
import type { components } from "./types";

export interface ReviewItem {
  cell: Suggestion;
  field: Field;
  /** my set on the field (null: none yet) */
  mySet: AnnotationSet | null;
}

export interface ReviewQueue {
  items: ReviewItem[];
  source: string;
  /** whether the review-queue API answered (it orders by the strategy); false: the foundation API's fallback */
  byStrategy: boolean;
}

/** A strategy as `GET /api/v1/review-strategies` lists them (the review-strategy registry). */
export type ReviewStrategy = components["schemas"]["ReviewStrategy"];

export interface StrategyList {
  strategies: ReviewStrategy[];
  /** false: the server does not list its strategies; these are the names its review-queue API accepts */
  listed: boolean;
}

/** The strategies the review-queue API accepts, for a server without the list (entropy is its default). */
const ACCEPTED_STRATEGIES = ["entropy", "margin", "least_confidence", "disagreement", "detector"];

export async function reviewStrategies(): Promise<StrategyList> {
  try {
    return { strategies: await api.get<ReviewStrategy[]>("/api/v1/review-strategies"), listed: true };
  } catch (error) {
    if (!isMissingEndpoint(error)) throw error;
  }
  const strategies = ACCEPTED_STRATEGIES.map((name, index) => {
    const spoken = name.replaceAll("_", " ");
    return { name, label: spoken[0].toUpperCase() + spoken.slice(1), description: "", default: index === 0 };
  });
  return { strategies, listed: false };
}

/** A cell as the review-queue API sends it. */
type ReviewCell = components["schemas"]["ReviewCell"];

export function suggestionOfReview(item: ReviewCell): Suggestion {
  const sorted = [...item.probabilities].sort((a, b) => b - a);
  return {
    id: item.id,
    x: item.x,
    y: item.y,
    width: item.width,
    height: item.height,
    countable: item.countable,
    cell_class: item.predicted_class,
    scores: { probabilities: item.probabilities, p_countable: item.p_countable },
    detector_score: item.detector_score,
    confidence: sorted[0] ?? null,
    margin: item.uncertainty.margin ?? (sorted.length > 1 ? sorted[0] - sorted[1] : null),
    entropy: item.uncertainty.entropy ?? null,
  };
}

const CANDIDATES = 200;

async function each<K, V>(keys: K[], load: (key: K) => Promise<V>): Promise<Map<K, V>> {
  const values = await Promise.all(keys.map(load));
  return new Map(keys.map((key, index) => [key, values[index]]));
}

async function myDraftSets(me: Me, fieldIds: number[]): Promise<Map<number, AnnotationSet>> {
  const mine = await annotationSets.list({ kind: "annotator", annotator: me.id ?? undefined });
  return new Map(mine.filter((s) => fieldIds.includes(s.field)).map((s) => [s.field, s]));
}

/** The queue by `strategy` (null: the server's default order). */
export async function loadReviewQueue(me: Me, strategy: ReviewStrategy | null, limit = 50): Promise<ReviewQueue> {
  try {
    const served = await api.get<ReviewCell[]>(withQuery("/api/v1/review-queue", { strategy: strategy?.name, limit }));
    const fieldIds = [...new Set(served.map((c) => c.field))];
    const [fieldById, mySets] = await Promise.all([each(fieldIds, (id) => fields.get(id)), myDraftSets(me, fieldIds)]);
    const items = served.map((c) => ({
      cell: suggestionOfReview(c),
      field: fieldById.get(c.field) as Field,
      mySet: mySets.get(c.field) ?? null,
    }));
    const order = strategy ? `, ${strategy.label.toLowerCase()} first` : "";
    return { items, source: `the review queue${order}`, byStrategy: true };
  } catch (error) {
    if (!isMissingEndpoint(error)) throw error;
  }
  return fallbackQueue(me, limit);
}

async function fallbackQueue(me: Me, limit: number): Promise<ReviewQueue> {
  const page = await cells.page({ kind: "prediction", ordering: "confidence", page_size: CANDIDATES });
  const candidates = page.results.filter((cell) => cell.confidence !== null);
  const sets = await each([...new Set(candidates.map((c) => c.annotation_set))], (id) => annotationSets.get(id));
  const fieldIds = [...new Set([...sets.values()].map((s) => s.field))];
  const [fieldById, mySetByField, assigned] = await Promise.all([
    each(fieldIds, (id) => fields.get(id)),
    myDraftSets(me, fieldIds),
    myAssignedFields(),
  ]);
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
  return {
    items,
    source: `the ${candidates.length} least confident model cells (foundation API)`,
    byStrategy: false,
  };
}
