// The review queue's state, pure: which cell is shown, what was decided for each model cell, the order of the
// decisions (undo walks back through them), and which strategy orders the queue.

import type { ReviewStrategy } from "../../api/reviewQueue";

export interface Decision {
  /** in words: a class name, "uncountable", "not a cell" */
  label: string;
  /** the class decided (null: uncountable or not a cell) */
  classId: number | null;
  fieldId: number;
  /** the key of my cell in the field's editor; null when no cell is kept ("not a cell") */
  key: string | null;
}

export interface QueueState {
  /** the position shown */
  index: number;
  /** by the model cell's id */
  decisions: ReadonlyMap<number, Decision>;
  /** the model cell ids decided, in order, with the position each was at */
  trail: ReadonlyArray<{ cellId: number; index: number }>;
}

export const START: QueueState = { index: 0, decisions: new Map(), trail: [] };

/** One step forward or back, staying within the queue. */
export function moved(state: QueueState, step: 1 | -1, length: number): QueueState {
  return { ...state, index: Math.min(Math.max(state.index + step, 0), Math.max(length - 1, 0)) };
}

/**
 * The state after deciding the model cell at position `index`: the decision is recorded (replacing an earlier one
 * for the same cell, which the caller takes back) and the cell after it shows.
 */
export function decided(
  state: QueueState,
  at: { cellId: number; index: number },
  decision: Decision,
  length: number,
): { state: QueueState; replaced: Decision | null } {
  const decisions = new Map(state.decisions);
  const replaced = decisions.get(at.cellId) ?? null;
  decisions.set(at.cellId, decision);
  const trail = [...state.trail, at];
  return { state: moved({ index: at.index, decisions, trail }, 1, length), replaced };
}

/** The state after undoing the last decision (back at its cell), and the decision the caller takes back. */
export function undone(state: QueueState): { state: QueueState; undone: Decision | null } {
  const last = state.trail[state.trail.length - 1];
  if (!last) return { state, undone: null };
  const decisions = new Map(state.decisions);
  const decision = decisions.get(last.cellId) ?? null;
  decisions.delete(last.cellId);
  return { state: { index: last.index, decisions, trail: state.trail.slice(0, -1) }, undone: decision };
}

/** The strategy the page opens with: the one the address names if the server has it, else the server's default. */
export function chooseStrategy(strategies: readonly ReviewStrategy[], requested: string | null): ReviewStrategy | null {
  return strategies.find((s) => s.name === requested) ?? strategies.find((s) => s.default) ?? strategies[0] ?? null;
}
