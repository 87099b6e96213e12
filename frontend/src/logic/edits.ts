// The annotator's changes as a queue of operations over cells, kept apart from what the server confirmed.
//
// What the user sees = the confirmed cells with the pending operations applied on top, so a refused or
// conflicting write never loses an edit: the operations stay until they are saved or the user drops them.
// Pure functions only; `setEditor.ts` sends the operations.

import type { Box, SetSnapshot } from "../api/types";
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
  | { kind: "update"; key: string; changes: CellChanges }
  | { kind: "delete"; key: string };

export type CellMap = ReadonlyMap<string, LocalCell>;

export function applyOp(cells: CellMap, op: Op): Map<string, LocalCell> {
  const next = new Map(cells);
  if (op.kind === "create") next.set(op.key, { key: op.key, ...op.data });
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
 * was never sent removes every trace of it. Operations on different cells are independent, so folding is safe.
 */
export function enqueue(queue: readonly Op[], op: Op): Op[] {
  const sameCell = queue.filter((queued) => queued.key === op.key);
  if (op.kind === "create" || sameCell.length === 0) return [...queue, op];
  const last = sameCell[sameCell.length - 1];
  if (op.kind === "update") {
    if (last.kind === "create")
      return queue.map((q) => (q === last ? { ...last, data: { ...last.data, ...op.changes } } : q));
    if (last.kind === "update")
      return queue.map((q) => (q === last ? { ...last, changes: { ...last.changes, ...op.changes } } : q));
    return [...queue, op];
  }
  const others = queue.filter((queued) => queued.key !== op.key);
  return sameCell.some((queued) => queued.kind === "create") ? others : [...others, op];
}

/** The operation that undoes `op`, computed from the view just before it; null when there is nothing to undo. */
export function inverse(before: CellMap, op: Op): Op | null {
  if (op.kind === "create") return { kind: "delete", key: op.key };
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
 * elsewhere is re-created as the user left it; deleting a cell that is already gone is dropped.
 */
export function rebase(ops: readonly Op[], server: CellMap, view: CellMap): Rebased {
  const rebased: Op[] = [];
  const notes: string[] = [];
  const createdHere = new Set(ops.filter((op) => op.kind === "create").map((op) => op.key));
  for (const op of ops) {
    const exists = server.has(op.key) || createdHere.has(op.key);
    if (op.kind === "create" || exists) {
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
