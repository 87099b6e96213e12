// The annotator's side panel: field and save state, the selected cell, the class palette by lineage with its keys
// and counts, the suggestions bar and the actions. Re-rendered whole on each change (it is small).

import type { Field, FieldStatus, Suggestion } from "../../api/shapes";
import type { LocalCell } from "../../logic/edits";
import { percent, type Choice } from "../../logic/scores";
import type { SaveState } from "../../logic/setEditor";
import type { Taxonomy } from "../../logic/taxonomy";
import { clear, h, words } from "../../ui/dom";
import { classPalette } from "../../ui/palette";
import type { Neighbours } from "./state";

export interface PanelState {
  field: Field;
  fieldStatus: FieldStatus;
  taxonomy: Taxonomy;
  readOnly: boolean;
  readOnlyReason: string;
  cells: LocalCell[];
  selectedCell: LocalCell | null;
  selectedSuggestion: { cell: Suggestion; choices: Choice[] } | null;
  openSuggestions: number;
  modelVersion: number | null;
  showSuggestions: boolean;
  saveState: SaveState;
  pending: number;
  version: number;
  message: string;
  drawing: boolean;
  autoAdvance: boolean;
  canUndo: boolean;
  neighbours: Neighbours;
}

export interface PanelActions {
  classify(classId: number): void;
  accept(): void;
  acceptAll(): void;
  toggleCountable(): void;
  remove(): void;
  toggleDrawing(): void;
  newBox(): void;
  undo(): void;
  submit(): void;
  toggleSuggestions(): void;
  setAutoAdvance(on: boolean): void;
  retry(): void;
}

function saveText(state: PanelState): string {
  switch (state.saveState) {
    case "saved":
      return `All changes saved · version ${state.version}`;
    case "saving":
      return `Saving ${state.pending} change${state.pending === 1 ? "" : "s"}…`;
    case "offline":
      return `${state.pending} change(s) not saved yet: ${state.message}`;
    case "conflict":
      return "Someone else changed this set: choose how to go on";
    case "locked":
      return `Not saved: ${state.message}`;
  }
}

function key(text: string) {
  return h("kbd", {}, text);
}

export function renderPanel(side: HTMLElement, state: PanelState, actions: PanelActions): void {
  const { field, taxonomy, neighbours } = state;
  const counts = new Map<number, number>();
  for (const cell of state.cells)
    if (cell.cell_class !== null && cell.countable) counts.set(cell.cell_class, (counts.get(cell.cell_class) ?? 0) + 1);
  const unclassified = state.cells.filter((c) => c.countable && c.cell_class === null).length;
  const uncountable = state.cells.filter((c) => !c.countable).length;

  const head = h(
    "div",
    { class: "side-head" },
    h(
      "div",
      {},
      h("strong", {}, `Field #${field.id}`),
      ` · case ${field.case_code} · ${field.width}×${field.height} · `,
      h("span", { class: `status ${state.fieldStatus}` }, words(state.fieldStatus)),
    ),
    h(
      "div",
      { class: "field-nav" },
      h(
        "a",
        {
          class: "button",
          href: neighbours.previous !== null ? `/fields/${neighbours.previous}` : null,
          "aria-disabled": neighbours.previous === null ? "true" : null,
        },
        "‹ ",
        key("["),
      ),
      h("span", { class: "muted" }, neighbours.position),
      h(
        "a",
        {
          class: "button",
          href: neighbours.next !== null ? `/fields/${neighbours.next}` : null,
          "aria-disabled": neighbours.next === null ? "true" : null,
        },
        key("]"),
        " ›",
      ),
      h("a", { class: "small", href: `/gallery/smear/${field.smear}` }, "gallery"),
    ),
    state.readOnlyReason ? h("div", { class: "read-only" }, state.readOnlyReason) : null,
    h(
      "div",
      { class: `save-state ${state.saveState}`, "data-state": state.saveState, role: "status" },
      saveText(state),
      state.saveState === "offline" ? h("button", { class: "link", onclick: actions.retry }, "retry now") : null,
    ),
  );

  const selection = h("div", { class: "selection" });
  if (state.selectedSuggestion) {
    const { cell, choices } = state.selectedSuggestion;
    appendPresent(
      selection,
      h(
        "div",
        {},
        h("span", { class: "tag suggestion" }, "model suggestion"),
        ` ${taxonomy.name(cell.cell_class)} · confidence ${percent(cell.confidence)}`,
      ),
      h(
        "ol",
        { class: "choices" },
        choices.map((c) => h("li", {}, `${taxonomy.name(c.classId)} ${percent(c.probability)}`)),
      ),
      state.readOnly
        ? null
        : h(
            "div",
            { class: "buttons" },
            h("button", { onclick: actions.accept }, "Accept ", key("a")),
            h("button", { onclick: actions.remove }, "Dismiss ", key("Del")),
          ),
      state.readOnly ? null : h("div", { class: "muted small" }, "A class key accepts it with that class."),
    );
  } else if (state.selectedCell) {
    const cell = state.selectedCell;
    appendPresent(
      selection,
      h(
        "div",
        {},
        h("span", { class: "tag mine" }, "your box"),
        ` ${taxonomy.name(cell.cell_class)}${cell.countable ? "" : " · uncountable"}`,
      ),
      h(
        "div",
        { class: "muted small" },
        `x ${Math.round(cell.x)}, y ${Math.round(cell.y)}, ${Math.round(cell.width)}×${Math.round(cell.height)} px${cell.source_cell ? " · from a suggestion" : ""}`,
      ),
      state.readOnly
        ? null
        : h(
            "div",
            { class: "buttons" },
            h(
              "button",
              { onclick: actions.toggleCountable },
              cell.countable ? "Mark uncountable " : "Mark countable ",
              key("c"),
            ),
            h("button", { onclick: actions.remove }, "Delete ", key("Del")),
          ),
    );
  } else {
    appendPresent(
      selection,
      h(
        "div",
        { class: "muted" },
        "No cell selected: ",
        key("j"),
        " / ",
        key("k"),
        state.readOnly ? " go through the cells." : " go through the cells, ",
        state.readOnly ? null : key("n"),
        state.readOnly ? null : " adds a box.",
      ),
    );
  }

  // A read-only view shows no editing affordance: no palette to pick from, no drawing tools, no Submit.
  const palette = state.readOnly
    ? null
    : classPalette(taxonomy, {
        onPick: actions.classify,
        active: state.selectedCell?.cell_class ?? null,
        counts,
      });

  const summary = h(
    "div",
    { class: "summary muted small" },
    `${state.cells.length} box${state.cells.length === 1 ? "" : "es"}`,
    unclassified ? h("span", { class: "warn" }, ` · ${unclassified} unclassified`) : null,
    uncountable ? ` · ${uncountable} uncountable` : null,
  );

  const suggestions = h(
    "div",
    { class: "suggestions-bar" },
    state.modelVersion === null
      ? h("span", { class: "muted" }, "No model suggestions for this field.")
      : [
          h(
            "span",
            {},
            `${state.openSuggestions} open suggestion${state.openSuggestions === 1 ? "" : "s"} (model ${state.modelVersion})`,
          ),
          state.readOnly
            ? null
            : h(
                "button",
                { onclick: actions.acceptAll, disabled: state.openSuggestions === 0 },
                "Accept all ",
                key("Shift+A"),
              ),
          h(
            "button",
            { class: "link", onclick: actions.toggleSuggestions },
            state.showSuggestions ? "hide " : "show ",
            key("v"),
          ),
        ],
  );

  const tools = state.readOnly
    ? null
    : h(
        "div",
        { class: "tools" },
        h(
          "button",
          {
            class: state.drawing ? "active" : "",
            onclick: actions.toggleDrawing,
            "aria-pressed": String(state.drawing),
          },
          "Draw ",
          key("b"),
        ),
        h("button", { onclick: actions.newBox }, "New box ", key("n")),
        h("button", { onclick: actions.undo, disabled: !state.canUndo }, "Undo ", key("Ctrl+Z")),
        h("button", { class: "primary", onclick: actions.submit }, "Submit ", key("Ctrl+Enter")),
      );

  const advance = h("input", { type: "checkbox", id: "auto-advance", checked: state.autoAdvance });
  advance.addEventListener("change", () => actions.setAutoAdvance(advance.checked));

  clear(
    side,
    head,
    selection,
    palette,
    summary,
    suggestions,
    tools,
    state.readOnly
      ? null
      : h("label", { class: "small", for: "auto-advance" }, advance, " go to the next cell after classifying"),
    h("div", { class: "muted small" }, "Press ", key("?"), " for every key."),
  );
}

/** Append the children that are there (a read-only view leaves its editing buttons out as null). */
function appendPresent(parent: HTMLElement, ...children: Array<Node | string | null>): void {
  for (const child of children) if (child !== null) parent.append(child);
}
