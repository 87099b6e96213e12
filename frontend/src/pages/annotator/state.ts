// The field annotator's state, pure: what the viewer shows (my cells, the other change during a conflict, the
// model's open suggestions), the order j / k walk through, what the side panel says, and the checks before submit.
// The controller (controller.ts) owns the editor and the viewer and calls these.

import type { FieldNeighbours } from "../../api/foundation";
import type { Field, FieldStatus, Suggestion } from "../../api/shapes";
import type { CellState, LocalCell } from "../../logic/edits";
import { readingOrder, stepIndex } from "../../logic/geometry";
import { percent } from "../../logic/scores";
import type { Conflict } from "../../logic/setEditor";
import type { Taxonomy } from "../../logic/taxonomy";
import type { ViewItem } from "./viewer";

const SUGGESTION_COLOUR = "#f59f00";
const UNCOUNTABLE_COLOUR = "#868e96";

/** What the page knows besides my cells (those are the editor's). */
export interface AnnotatorState {
  fieldStatus: FieldStatus;
  readOnly: boolean;
  /** the selected item's key: my cell's editor key, or a suggestion's (suggestionKey) */
  selected: string | null;
  showSuggestions: boolean;
  autoAdvance: boolean;
  /** suggestions dismissed on this page (kept for the browser session) */
  dismissed: ReadonlySet<number>;
}

/** Suggestions and my cells share the viewer: a suggestion's key is "s" and its prediction cell id. */
export function suggestionKey(id: number): string {
  return `s${id}`;
}

export function suggestionOf<T extends Pick<Suggestion, "id">>(
  key: string | null,
  suggestions: ReadonlyMap<number, T>,
): T | undefined {
  return key?.startsWith("s") ? suggestions.get(Number(key.slice(1))) : undefined;
}

/** The suggestions not taken over into my set (`source_cell`) and not dismissed. */
export function openSuggestions<T extends Pick<Suggestion, "id">>(
  suggestions: readonly T[],
  mine: Iterable<CellState>,
  dismissed: ReadonlySet<number>,
): T[] {
  const taken = new Set<number>();
  for (const cell of mine) if (cell.source_cell !== null) taken.add(cell.source_cell);
  return suggestions.filter((s) => !taken.has(s.id) && !dismissed.has(s.id));
}

export function cellLabel(cell: Pick<CellState, "cell_class" | "countable">, taxonomy: Taxonomy): string {
  const name =
    cell.cell_class === null
      ? "unclassified"
      : `${taxonomy.get(cell.cell_class)?.shortcut ?? ""} ${taxonomy.name(cell.cell_class)}`;
  return cell.countable ? name : `${name} · uncountable`;
}

export function suggestionLabel(cell: Suggestion, taxonomy: Taxonomy): string {
  return `AI ${taxonomy.name(cell.cell_class)} ${percent(cell.confidence)}${cell.countable ? "" : " · uncountable"}`;
}

export interface Shown {
  /** my cells as shown: during a conflict, the server's with my changes re-applied */
  cells: ReadonlyMap<string, LocalCell>;
  conflict: Conflict | null;
  /** the open suggestions, when they are shown */
  suggestions: readonly Suggestion[];
  readOnly: boolean;
}

/** The viewer's items: my cells (their lineage colour; a conflict marks theirs and my unsaved ones), then suggestions. */
export function viewItems(shown: Shown, taxonomy: Taxonomy): ViewItem[] {
  const { conflict } = shown;
  const pending = new Set(conflict?.rebased.map((op) => op.key));
  const theirs = new Set(
    conflict ? [...conflict.theirs.added, ...conflict.theirs.changed.map((c) => c.after)].map((c) => c.key) : [],
  );
  const mine: ViewItem[] = [...shown.cells.values()].map((cell) => ({
    key: cell.key,
    kind: "mine",
    box: cell,
    label: cellLabel(cell, taxonomy),
    colour: cell.countable ? taxonomy.colour(cell.cell_class) : UNCOUNTABLE_COLOUR,
    emphasis: theirs.has(cell.key) ? "theirs" : pending.has(cell.key) ? "pending" : "none",
    editable: !shown.readOnly && !conflict,
  }));
  const suggestions: ViewItem[] = shown.suggestions.map((cell) => ({
    key: suggestionKey(cell.id),
    kind: "suggestion",
    box: cell,
    label: suggestionLabel(cell, taxonomy),
    colour: SUGGESTION_COLOUR,
    emphasis: "none",
    editable: false,
  }));
  return [...mine, ...suggestions];
}

/** The order j / k go through the items: reading order (rows top to bottom, each left to right). */
export function orderedKeys(items: readonly ViewItem[]): string[] {
  return readingOrder(items.map((item) => ({ ...item.box, key: item.key }))).map((box) => box.key);
}

/** The item after (or before) the selected one; null when there is none. */
export function stepped(keys: readonly string[], selected: string | null, direction: 1 | -1): string | null {
  const index = stepIndex(selected ? keys.indexOf(selected) : -1, direction, keys.length);
  return index >= 0 ? keys[index] : null;
}

/** What is selected after the selected item goes away (deleted or dismissed): the next one, else nothing. */
export function selectedAfterRemoval(keys: readonly string[], selected: string): string | null {
  const next = keys[stepIndex(keys.indexOf(selected), 1, keys.length)];
  return next && next !== selected ? next : null;
}

export interface Access {
  annotating: boolean;
  assignedToMe: boolean;
  readOnly: boolean;
  /** what a reader who does not annotate sees instead of own cells ("consensus set", "no reviewed truth yet") */
  truthLabel: string;
}

/** Why the field cannot be changed, in words; "" when it can. */
export function readOnlyReason(access: Access): string {
  if (!access.annotating) return `You are looking at the ${access.truthLabel}; only annotators change boxes.`;
  if (!access.assignedToMe) return "This field is not assigned to you, so you can look but not change it.";
  return access.readOnly ? "You submitted this field; it can no longer be changed." : "";
}

/** Starting my set moves a new field into annotation (annotations/services.py). */
export function statusOnceStarted(status: FieldStatus): FieldStatus {
  return status === "uploaded" || status === "prelabelled" ? "in_annotation" : status;
}

export interface Neighbours {
  /** "3 of 12 in case C-7", or "" */
  position: string;
  previous: number | null;
  next: number | null;
}

/** The field's place among the fields of its case (`[` / `]` go to the neighbours). */
export function neighbours(place: FieldNeighbours, field: Pick<Field, "id" | "case_code">): Neighbours {
  return {
    position: `${place.before + 1} of ${place.before + place.after + 1} in case ${field.case_code}`,
    previous: place.previous,
    next: place.next,
  };
}

export type SubmitCheck =
  { ready: false; problem: string; first: string } | { ready: true; question: string; text: string };

/** Before submitting: every countable cell needs a class; the confirmation says what is submitted. */
export function submitCheck(cells: ReadonlyMap<string, LocalCell>, openCount: number, fieldId: number): SubmitCheck {
  const unclassified = [...cells.values()].filter((cell) => cell.countable && cell.cell_class === null);
  if (unclassified.length)
    return {
      ready: false,
      problem: `${unclassified.length} countable cell(s) have no class yet; classify them (class keys) or mark them uncountable (c).`,
      first: unclassified[0].key,
    };
  const count = cells.size;
  const left = openCount ? `; ${openCount} suggestion(s) not accepted are left out` : "";
  return {
    ready: true,
    question: `Submit field #${fieldId}?`,
    text: `${count} cell${count === 1 ? "" : "s"}${left}. The set is locked afterwards; later changes go through the cross-check.`,
  };
}
