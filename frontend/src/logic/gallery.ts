// The cell gallery's model: which cells of each field show (one source at a time: my work with the model's
// suggestions I have not taken over, or the truth, or the active model's predictions), how they group by class,
// which count, and how keyboard focus moves through the groups.

import type { Box, Cell } from "../api/shapes";
import type { LocalCell } from "./edits";
import { iou } from "./geometry";
import type { Taxonomy } from "./taxonomy";

export type Origin = "mine" | "suggestion" | "truth";

export interface GalleryItem {
  /** unique across fields: `${fieldId}:${cellKey}` */
  key: string;
  fieldId: number;
  /** the key of the cell in its field's editor (mine), or the suggestion / truth cell id */
  cellKey: string;
  origin: Origin;
  box: Box;
  cell_class: number | null;
  countable: boolean;
  confidence: number | null;
  suggestion: Cell | null;
}

export interface FieldLayers {
  fieldId: number;
  /** my cells as the editor shows them; null when I have no set on the field */
  mine: ReadonlyMap<string, LocalCell> | null;
  suggestions: readonly Cell[];
  /** the read-only source's cells (the truth, or the active model's predictions) */
  truth: readonly Cell[];
}

/** What a gallery shows: "mine" (editable), "consensus" or "model" (read-only); never a blend of them. */
export type ShownSource = "mine" | "consensus" | "model";

/** Suggestions count as taken once one of my cells came from them or covers them (IoU >= this). */
export const SAME_CELL_IOU = 0.5;

export function fieldItems(layers: FieldLayers, source: ShownSource): GalleryItem[] {
  const { fieldId } = layers;
  if (source !== "mine") {
    // One source only: a field without truth shows nothing under "consensus" (never the model's cells instead).
    const origin: Origin = source === "model" ? "suggestion" : "truth";
    return layers.truth.map((cell) => fromCell(fieldId, cell, origin));
  }
  const mine = [...(layers.mine?.values() ?? [])];
  const byId = new Map(layers.suggestions.map((s) => [s.id, s]));
  const taken = new Set(mine.map((cell) => cell.source_cell).filter((id): id is number => id !== null));
  const items: GalleryItem[] = mine.map((cell) => {
    const source = cell.source_cell !== null ? byId.get(cell.source_cell) : undefined;
    return {
      key: `${fieldId}:${cell.key}`,
      fieldId,
      cellKey: cell.key,
      origin: "mine",
      box: cell,
      cell_class: cell.cell_class,
      countable: cell.countable,
      // A suggestion kept as predicted keeps its confidence; a corrected one is the annotator's call.
      confidence: source && source.cell_class === cell.cell_class ? source.confidence : null,
      suggestion: source ?? null,
    };
  });
  for (const suggestion of layers.suggestions) {
    if (taken.has(suggestion.id) || mine.some((cell) => iou(cell, suggestion) >= SAME_CELL_IOU)) continue;
    items.push(fromCell(fieldId, suggestion, "suggestion"));
  }
  return items;
}

function fromCell(fieldId: number, cell: Cell, origin: Origin): GalleryItem {
  return {
    key: `${fieldId}:${origin === "suggestion" ? "s" : "t"}${cell.id}`,
    fieldId,
    cellKey: String(cell.id),
    origin,
    box: cell,
    cell_class: cell.cell_class,
    countable: cell.countable,
    confidence: cell.confidence,
    suggestion: origin === "suggestion" ? cell : null,
  };
}

/** The cells the differential counts: under "mine" only my cells (suggestions not taken over are not my work). */
export function countedItems(items: readonly GalleryItem[], source: ShownSource): GalleryItem[] {
  return source === "mine" ? items.filter((item) => item.origin === "mine") : [...items];
}

export type GroupId = number | "unclassified" | "uncountable";

export interface GalleryGroup {
  id: GroupId;
  items: GalleryItem[];
}

export function groupOf(item: Pick<GalleryItem, "countable" | "cell_class">): GroupId {
  if (!item.countable) return "uncountable";
  return item.cell_class ?? "unclassified";
}

/**
 * Groups in taxonomy order (unclassified first, uncountable last), each sorted least confident first (where a
 * misclassification is likeliest); cells without a confidence (drawn by hand) come after, in field order.
 */
export function groupItems(items: readonly GalleryItem[], taxonomy: Taxonomy): GalleryGroup[] {
  const order: GroupId[] = ["unclassified", ...taxonomy.classes.map((c) => c.id), "uncountable"];
  const groups = new Map<GroupId, GalleryItem[]>(order.map((id) => [id, []]));
  for (const item of items) groups.get(groupOf(item))?.push(item);
  return order
    .map((id) => ({ id, items: (groups.get(id) ?? []).sort(byConfidence) }))
    .filter((group) => group.items.length > 0);
}

function byConfidence(a: GalleryItem, b: GalleryItem): number {
  const ca = a.confidence ?? Number.POSITIVE_INFINITY;
  const cb = b.confidence ?? Number.POSITIVE_INFINITY;
  return ca - cb || a.fieldId - b.fieldId || a.box.y - b.box.y || a.box.x - b.box.x;
}

export type Direction = "left" | "right" | "up" | "down";

/**
 * The item keyboard focus moves to. Left/right walk the whole gallery in order; up/down move one row (`columns`
 * crops) within a group and into the neighbouring group at the same column when leaving it.
 */
export function moveFocus(
  groups: readonly GalleryGroup[],
  focus: string | null,
  direction: Direction,
  columns: number,
): string | null {
  const flat = groups.flatMap((g) => g.items.map((item) => item.key));
  if (!flat.length) return null;
  if (focus === null || !flat.includes(focus)) return flat[0];
  if (direction === "left" || direction === "right") {
    const index = flat.indexOf(focus) + (direction === "right" ? 1 : -1);
    return flat[Math.min(Math.max(index, 0), flat.length - 1)];
  }
  const groupIndex = groups.findIndex((g) => g.items.some((item) => item.key === focus));
  const items = groups[groupIndex].items;
  const index = items.findIndex((item) => item.key === focus);
  const column = index % columns;
  const target = index + (direction === "down" ? columns : -columns);
  if (target >= 0 && target < items.length) return items[target].key;
  if (direction === "down" && Math.floor(index / columns) < Math.floor((items.length - 1) / columns))
    return items[items.length - 1].key;
  const neighbour = groups[groupIndex + (direction === "down" ? 1 : -1)];
  if (!neighbour) return focus;
  if (direction === "down") return neighbour.items[Math.min(column, neighbour.items.length - 1)].key;
  const lastRow = Math.floor((neighbour.items.length - 1) / columns);
  return neighbour.items[Math.min(lastRow * columns + column, neighbour.items.length - 1)].key;
}

/** The first item of the next (or previous) group, wrapping around. */
export function jumpGroup(groups: readonly GalleryGroup[], focus: string | null, step: 1 | -1): string | null {
  if (!groups.length) return null;
  const current = groups.findIndex((g) => g.items.some((item) => item.key === focus));
  const next = current < 0 ? 0 : (current + step + groups.length) % groups.length;
  return groups[next].items[0].key;
}

/** Keys from `anchor` to `focus` in gallery order (Shift+arrows extend a selection this way). */
export function range(groups: readonly GalleryGroup[], anchor: string, focus: string): string[] {
  const flat = groups.flatMap((g) => g.items.map((item) => item.key));
  const a = flat.indexOf(anchor);
  const b = flat.indexOf(focus);
  if (a < 0 || b < 0) return [focus];
  return flat.slice(Math.min(a, b), Math.max(a, b) + 1);
}
