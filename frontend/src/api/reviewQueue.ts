// The review queue: my batch of the model's least certain cells, held for me while the page is open. Every cell needs
// two blind decisions by two reviewers (class, uncountable or not a white cell); agreement is truth for the crop,
// disagreement goes to the cross-check. From `GET /api/v1/review-queue`; decisions go to its `decisions` endpoint, never
// into an annotation set (the queue serves cells of fields that are not assigned to me).

import { fields } from "./foundation";
import { api, isMissingEndpoint, request, withQuery } from "./http";
import type { ReviewConflict } from "./review";
import type { Field, Suggestion } from "./shapes";
import type { components } from "./types";

export interface ReviewItem {
  cell: Suggestion;
  field: Field;
}

export interface ReviewQueue {
  items: ReviewItem[];
  source: string;
  /** adjudicators: conflicts of queued cells both reviewers kept, to decide first (with their field, for the crop) */
  conflicts: { conflict: ReviewConflict; field: Field }[];
  /** cells I decided since midnight */
  decidedToday: number;
}

export type Verdict = components["schemas"]["VerdictEnum"];

/** A strategy as `GET /api/v1/review-strategies` lists them (the review-strategy registry). */
export type ReviewStrategy = components["schemas"]["ReviewStrategy"];

export interface StrategyList {
  strategies: ReviewStrategy[];
  /** false: the server does not list its strategies; these are the names its review-queue API accepts */
  listed: boolean;
}

/** The strategies the review-queue API accepts, for a server without the list (entropy is its default). */
const ACCEPTED_STRATEGIES = [
  "entropy",
  "margin",
  "least_confidence",
  "disagreement",
  "detector",
  "countability",
  "random",
];

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
  const probabilities = item.probabilities ?? [];
  const uncertainty = item.uncertainty ?? {};
  const sorted = [...probabilities].sort((a, b) => b - a);
  return {
    id: item.id,
    x: item.x,
    y: item.y,
    width: item.width,
    height: item.height,
    countable: item.countable,
    cell_class: item.predicted_class,
    scores: { probabilities, p_countable: item.p_countable },
    detector_score: item.detector_score,
    confidence: sorted[0] ?? null,
    margin: uncertainty.margin ?? (sorted.length > 1 ? sorted[0] - sorted[1] : null),
    entropy: uncertainty.entropy ?? null,
  };
}

type ReviewBatch = components["schemas"]["ReviewBatch"];

/** My batch by `strategy` (null: the server's default order): the cells I hold, topped up to `limit`. */
export async function loadReviewQueue(strategy: ReviewStrategy | null, limit = 10): Promise<ReviewQueue> {
  const batch = await api.get<ReviewBatch>(withQuery("/api/v1/review-queue", { strategy: strategy?.name, limit }));
  const conflicts = batch.conflicts as unknown as ReviewConflict[];
  const fieldIds = [...new Set([...batch.cells.map((c) => c.field), ...conflicts.map((c) => c.field)])];
  const loaded = await Promise.all(fieldIds.map((id) => fields.get(id)));
  const fieldById = new Map(fieldIds.map((id, index) => [id, loaded[index]]));
  const items = batch.cells.map((c) => ({ cell: suggestionOfReview(c), field: fieldById.get(c.field) as Field }));
  const order = strategy ? `, ${strategy.label.toLowerCase()} first` : "";
  return {
    items,
    source: `the review queue${order}`,
    conflicts: conflicts.map((conflict) => ({ conflict, field: fieldById.get(conflict.field) as Field })),
    decidedToday: batch.decided_today,
  };
}

/** My blind decision on a cell I hold; the server answers 409 with the reason when it cannot take it. */
export function decideCell(cellId: number, verdict: Verdict, cellClass: number | null): Promise<unknown> {
  const body: Record<string, unknown> = { cell: cellId, verdict };
  if (verdict === "class") body.cell_class = cellClass;
  return api.post("/api/v1/review-queue/decisions", body);
}

/** Undo: take my decision back while the other reviewer has not decided the cell. */
export function withdrawDecision(cellId: number): Promise<void> {
  return api.delete(`/api/v1/review-queue/decisions/${cellId}`);
}

/** The page is open: keep holding my batch. */
export function renewHold(): Promise<unknown> {
  return api.post("/api/v1/review-queue/renew");
}

/** Give cells back to the queue at once (skipped ones; all of them when I leave), even while the page unloads. */
export async function releaseCells(cellIds?: number[]): Promise<void> {
  await request("POST", "/api/v1/review-queue/release", { json: cellIds ? { cells: cellIds } : {}, keepalive: true });
}
