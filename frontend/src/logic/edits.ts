// The annotator's changes as a queue of operations over cells, kept apart from what the server confirmed.
//
// What the user sees = the confirmed cells with the pending operations applied on top, so a refused or
// conflicting write never loses an edit: the operations stay until they are saved or the user drops them.
// Pure functions only; `setEditor.ts` sends the operations.
//
// Taking a model suggestion over is its own operation, `accept`: the server copies the suggestion into the set
// (POST /annotation-sets/{id}/accept), so the box, class and provenance (`source_cell`) come from the server's
// prediction, never from what the page sends. The page shows the copy at once from `suggestionCopy`.

import type { Box, SetSnapshot, Suggestion } from "../api/shapes";
import { sameBox } from "./geometry";

export interface CellState extends Box {
  countable: boolean;
  cell_class: number | null;
  source_cell: number | null;
}

/** A cell as the UI knows it: `key` is stable across saves; `id` is the server's once it exists. */
export interface LocalCell extends CellState {
  key: string;
}

export type CellChanges = Partial<Omit<CellState, "source_cell">>;

export type Op =
  | { kind: "create"; key: string; data: CellState }
  | { kind: "accept"; key: string; source: number; data: CellState }
  | { kind: "update"; key: string; changes: CellChanges }
  | { kind: "delete"; key: string };

/** An operation that brings a cell into the set (until it is sent, the cell exists on this page only). */
export function isCreation(op: Op): op is Extract<Op, { kind: "create" | "accept" }> {
  return op.kind === "create" || op.kind === "accept";
}

/** The cell that accepting `suggestion` makes, as the server's /accept copies it. */
export function suggestionCopy(suggestion: Pick<Suggestion, "id" | keyof Box | "countable" | "cell_class">): CellState {
  return {
    x: suggestion.x,
    y: suggestion.y,
    width: suggestion.width,
    height: suggestion.height,
    countable: suggestion.countable,
    cell_class: suggestion.cell_class,
    source_cell: suggestion.id,
  };
}

export type CellMap = ReadonlyMap<string, LocalCell>;

export function applyOp(cells: CellMap, op: Op): Map<string, LocalCell> {
  const next = new Map(cells);
  if (isCreation(op)) next.set(op.key, { key: op.key, ...op.data });
  else if (op.kind === "delete") next.delete(op.key);
  else {
    const cell = next.get(op.key);
    if (cell) next.set(op.key, { ...cell, ...op.changes });
  }
  return next;
}

export function applyOps(cells: CellMap, ops: readonly Op[]): Map<string, LocalCell> {
  return ops.reduce<Map<string, LocalCell>>((view, op) => applyOp(view, op), new Map(cells));
}

/**
 * Add an operation to the not-yet-sent queue, folding it into earlier ones on the same cell: an edit of a cell
 * whose creation is still queued becomes part of the creation, two edits become one, and deleting a cell that
 * was never sent removes every trace of it. An edit of a queued acceptance stays an edit of its own (the server
 * copies a suggestion as predicted). Operations on different cells are independent, so folding is safe.
 */
export function enqueue(queue: readonly Op[], op: Op): Op[] {
  const sameCell = queue.filter((queued) => queued.key === op.key);
  if (isCreation(op) || sameCell.length === 0) return [...queue, op];
  const last = sameCell[sameCell.length - 1];
  if (op.kind === "update") {
    if (last.kind === "create")
      return queue.map((q) => (q === last ? { ...last, data: { ...last.data, ...op.changes } } : q));
    if (last.kind === "update")
      return queue.map((q) => (q === last ? { ...last, changes: { ...last.changes, ...op.changes } } : q));
    return [...queue, op];
  }
  const others = queue.filter((queued) => queued.key !== op.key);
  return sameCell.some(isCreation) ? others : [...others, op];
}

/** The operation that undoes `op`, computed from the view just before it; null when there is nothing to undo. */
export function inverse(before: CellMap, op: Op): Op | null {
  if (isCreation(op)) return { kind: "delete", key: op.key };
  const cell = before.get(op.key);
  if (!cell) return null;
  if (op.kind === "delete") {
    const { key, ...data } = cell;
    return { kind: "create", key, data };
  }
  const changes: CellChanges = {};
  for (const name of Object.keys(op.changes) as (keyof CellChanges)[]) {
    (changes as Record<string, unknown>)[name] = cell[name];
  }
  return { kind: "update", key: op.key, changes };
}

/** The attribute changes that turn `cell` into `target` (empty when equal). */
export function changesBetween(cell: CellState, target: CellState): CellChanges {
  const changes: CellChanges = {};
  if (!sameBox(cell, target))
    Object.assign(changes, { x: target.x, y: target.y, width: target.width, height: target.height });
  if (cell.countable !== target.countable) changes.countable = target.countable;
  if (cell.cell_class !== target.cell_class) changes.cell_class = target.cell_class;
  return changes;
}

export function keyForId(id: number): string {
  return `c${id}`;
}

/** The server's cells keyed for the UI; `keyOf` keeps keys stable for cells the UI already knows by another key. */
export function fromSnapshot(
  snapshot: Pick<SetSnapshot, "cells">,
  keyOf: (id: number) => string = keyForId,
): Map<string, LocalCell> {
  return new Map(
    snapshot.cells.map((cell) => {
      const key = keyOf(cell.id);
      const local: LocalCell = {
        key,
        x: cell.x,
        y: cell.y,
        width: cell.width,
        height: cell.height,
        countable: cell.countable,
        cell_class: cell.cell_class,
        source_cell: cell.source_cell ?? null,
      };
      return [key, local];
    }),
  );
}

export interface Rebased {
  ops: Op[];
  /** what happened to operations that could not be re-applied as they were, in words */
  notes: string[];
}

/**
 * Re-apply pending operations on top of the server's current cells after a 409. Edits of cells that still exist
 * apply as they are (attributes the user did not touch keep the other change); an edited cell that was deleted
 * elsewhere is re-created as the user left it; deleting a cell that is already gone is dropped. A suggestion that
 * the other change accepted already is not accepted twice: the caller keys the server's copy by the acceptance's
 * key, so the edits made after it apply to that copy.
 */
export function rebase(ops: readonly Op[], server: CellMap, view: CellMap): Rebased {
  const rebased: Op[] = [];
  const notes: string[] = [];
  const createdHere = new Set(ops.filter((op) => isCreation(op) && !server.has(op.key)).map((op) => op.key));
  for (const op of ops) {
    const exists = server.has(op.key) || createdHere.has(op.key);
    if (op.kind === "accept" && server.has(op.key)) {
      notes.push("A suggestion you accepted was already accepted in the other change.");
    } else if (isCreation(op) || exists) {
      rebased.push(op);
    } else if (op.kind === "update") {
      const mine = view.get(op.key);
      if (mine && !rebased.some((r) => r.key === op.key)) {
        const { key, ...data } = mine;
        rebased.push({ kind: "create", key, data });
        createdHere.add(key);
        notes.push("A cell you changed was deleted in the other change; yours is created again as you left it.");
      }
    } else {
      notes.push("A cell you deleted was already deleted in the other change.");
    }
  }
  return { ops: rebased, notes };
}

export interface CellDiff {
  added: LocalCell[];
  removed: LocalCell[];
  changed: Array<{ before: LocalCell; after: LocalCell; attributes: string[] }>;
}

export function diffCells(before: CellMap, after: CellMap): CellDiff {
  const diff: CellDiff = { added: [], removed: [], changed: [] };
  for (const [key, cell] of after) {
    const old = before.get(key);
    if (!old) {
      diff.added.push(cell);
      continue;
    }
    const attributes = Object.keys(changesBetween(old, cell)).filter(
      (name) => name !== "y" && name !== "width" && name !== "height",
    );
    if (attributes.length)
      diff.changed.push({ before: old, after: cell, attributes: attributes.map((a) => (a === "x" ? "box" : a)) });
  }
  for (const [key, cell] of before) if (!after.has(key)) diff.removed.push(cell);
  return diff;
}
