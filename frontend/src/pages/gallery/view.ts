// The gallery's views: the crops grouped by class (main), the live differential, the saving state and the palette
// to reclassify with (side), and the selection painted onto the crops.

import type { Field } from "../../api/shapes";
import { differential, share } from "../../logic/differential";
import type { GalleryGroup, GalleryItem, GroupId } from "../../logic/gallery";
import { cropView } from "../../logic/geometry";
import { percent } from "../../logic/scores";
import type { Taxonomy } from "../../logic/taxonomy";
import { cropBackground } from "../../ui/crops";
import { clear, h, type Attributes } from "../../ui/dom";
import { classPalette } from "../../ui/palette";
import type { Selection } from "./state";

export const CROP = 96;
const MARGIN = 0.2;
/** the gap between crops in a row (styles.css `.crops`) */
const GAP = 6;

export interface MainView {
  title: string;
  fieldCount: number;
  items: readonly GalleryItem[];
  groups: readonly GalleryGroup[];
  taxonomy: Taxonomy;
  fieldOf(id: number): Field;
  /** why a crop of mine cannot change ("submitted", "not assigned"), or "" */
  lockedWhy(fieldId: number): string;
  /** my work (reclassify, drag); false for the read-only sources */
  editable: boolean;
  /** the source chooser, drawn under the title */
  sourcePicker: HTMLElement;
  /** called after each later batch of crops is in the page (to paint the selection onto them) */
  onMoreCrops(): void;
}

/** Crops drawn at once; the rest follow in batches, one per animation frame, so a large case paints at once. */
const FIRST_CROPS = 120;
const CROPS_PER_FRAME = 300;
/** Each rendering of a gallery: a batch of an older one still queued is dropped. */
const renders = new WeakMap<HTMLElement, number>();

function groupName(id: GroupId, taxonomy: Taxonomy): string {
  if (id === "unclassified") return "Unclassified";
  if (id === "uncountable") return "Uncountable";
  return taxonomy.get(id)?.name ?? String(id);
}

function cropButton(item: GalleryItem, state: MainView): HTMLElement {
  const { taxonomy } = state;
  const field = state.fieldOf(item.fieldId);
  const name = taxonomy.name(item.cell_class);
  const lockedWhy = state.editable ? state.lockedWhy(item.fieldId) : "";
  return h(
    "button",
    {
      class: `crop ${item.origin}${item.countable ? "" : " uncountable"}`,
      dataset: { key: item.key },
      draggable: state.editable ? "true" : "false",
      title: `${name}${item.countable ? "" : " (uncountable)"} · field #${item.fieldId}${item.confidence !== null ? ` · confidence ${percent(item.confidence)}` : ""}${item.origin === "suggestion" ? " · model suggestion" : ""}`,
      "aria-label": `${name} cell of field ${item.fieldId}`,
      tabindex: "-1",
      style: cropBackground(field, cropView(item.box, field.width, field.height, CROP, MARGIN)),
    },
    item.confidence !== null ? h("span", { class: "conf" }, percent(item.confidence)) : null,
    item.origin === "suggestion" && state.editable
      ? h("span", { class: "flag" }, "AI")
      : lockedWhy
        ? h("span", { class: "flag" }, lockedWhy)
        : null,
  );
}

export function renderMain(main: HTMLElement, state: MainView): void {
  const { groups, taxonomy } = state;
  const generation = (renders.get(main) ?? 0) + 1;
  renders.set(main, generation);
  // Each group's crops in reading order: the first FIRST_CROPS now, the others queued (group by group).
  const queued: Array<{ into: HTMLElement; items: GalleryItem[] }> = [];
  let budget = FIRST_CROPS;
  const cropsOf = (group: GalleryGroup): HTMLElement => {
    const now = group.items.slice(0, budget);
    budget -= now.length;
    const into = h(
      "div",
      { class: "crops" },
      now.map((item) => cropButton(item, state)),
    );
    if (now.length < group.items.length) queued.push({ into, items: group.items.slice(now.length) });
    return into;
  };
  const drawMore = (): void => {
    if (renders.get(main) !== generation) return;
    let room = CROPS_PER_FRAME;
    while (queued.length && room > 0) {
      const next = queued[0];
      const part = next.items.splice(0, room);
      next.into.append(...part.map((item) => cropButton(item, state)));
      room -= part.length;
      if (!next.items.length) queued.shift();
    }
    state.onMoreCrops();
    if (queued.length) requestAnimationFrame(drawMore);
  };
  clear(
    main,
    h("h1", {}, `Cell gallery · ${state.title}`),
    state.sourcePicker,
    h(
      "p",
      { class: "muted small" },
      `${state.items.length} cells from ${state.fieldCount} fields · least confident first · press `,
      h("kbd", {}, "?"),
      " for keys",
    ),
    groups.length ? null : h("p", { class: "empty" }, "There are no cells from this source in these fields yet."),
    h(
      "div",
      { class: "groups" },
      groups.map((group) =>
        h(
          "section",
          { class: "group", dataset: { group: String(group.id) } },
          h(
            "div",
            { class: "group-head" },
            h("span", {
              class: "dot",
              style: { background: typeof group.id === "number" ? taxonomy.colour(group.id) : "#adb5bd" },
            }),
            groupName(group.id, taxonomy),
            typeof group.id === "number" ? h("kbd", {}, taxonomy.get(group.id)?.shortcut ?? "") : null,
            h("span", { class: "muted" }, `${group.items.length}`),
          ),
          cropsOf(group),
        ),
      ),
    ),
  );
  if (queued.length) requestAnimationFrame(drawMore);
}

export interface SideView {
  /** the counted cells (under "my work": mine only, not the suggestions I have not taken over) */
  items: readonly GalleryItem[];
  /** how many crops show */
  shown: number;
  taxonomy: Taxonomy;
  /** fields whose changes are not all saved, in words */
  unsaved: string[];
  source: "mine" | "consensus" | "model";
  editable: boolean;
}

const COUNTED_FROM = {
  mine: "Counted from my work, as the case report counts it with the source “mine”.",
  consensus: "Counted from the consensus, as the case report counts it.",
  model: "Counted from the active model version's predictions, as the case report counts it with the source “model”.",
};

export interface SideActions {
  reclassify(classId: number): void;
  toggleCountable(): void;
}

export function renderSide(side: HTMLElement, state: SideView, actions: SideActions): void {
  const { taxonomy } = state;
  const counts = differential(state.items, taxonomy.classes);
  const row = (label: string, count: number, attributes: Attributes) =>
    h(
      "tr",
      attributes,
      h("td", {}, label),
      h("td", { class: "num" }, count),
      h("td", { class: "num" }, percent(share(count, counts.total), 1)),
    );
  const rows = taxonomy
    .groups()
    .flatMap((group) => [
      row(group.lineage, counts.byLineage.get(group.lineage) ?? 0, { class: "lineage-row" }),
      ...group.classes
        .filter((cls) => counts.byClass.get(cls.id))
        .map((cls) => row(cls.name, counts.byClass.get(cls.id) ?? 0, { dataset: { class: String(cls.id) } })),
    ]);
  const notCounted = state.shown - state.items.length;
  clear(
    side,
    h("h2", {}, state.editable ? "Differential (live)" : "Differential"),
    h("p", { class: "muted small source-note" }, COUNTED_FROM[state.source]),
    notCounted > 0
      ? h(
          "p",
          { class: "muted small" },
          `${notCounted} model suggestion(s) you have not taken over are shown but not counted.`,
        )
      : null,
    h(
      "div",
      { class: "differential", "data-total": String(counts.total) },
      h("div", { class: "stat" }, counts.total),
      h("div", { class: "muted small" }, "counted cells"),
      h("div", {}, `blasts ${counts.blasts} · ${percent(share(counts.blasts, counts.total), 1)}`),
    ),
    h("table", { class: "diff-table" }, h("tbody", {}, rows)),
    h(
      "div",
      { class: "muted small" },
      `${counts.uncountable} uncountable · ${counts.unclassified} unclassified (not counted)`,
    ),
    ...(state.editable
      ? [
          h(
            "div",
            { class: `save-state ${state.unsaved.length ? "saving" : "saved"}`, role: "status" },
            state.unsaved.length ? state.unsaved.join("; ") : "All changes saved",
          ),
          h("h2", {}, "Reclassify"),
          h(
            "p",
            { class: "muted small" },
            "Select crops (click, Ctrl+click, Shift+click or Space) and press a class key, or drag them onto a class.",
          ),
          classPalette(taxonomy, { onPick: actions.reclassify, variant: "palette-drop" }),
          h("button", { onclick: actions.toggleCountable }, "Uncountable ", h("kbd", {}, "c")),
        ]
      : [h("p", { class: "muted small read-only-note" }, "These cells are read-only here.")]),
  );
}

/** Mark the selected and focused crops (without re-rendering) and keep the focused one in view (`reveal`). */
export function paintSelection(main: HTMLElement, selection: Selection, reveal = true): void {
  for (const button of main.querySelectorAll<HTMLElement>(".crop")) {
    const key = button.dataset.key ?? "";
    button.classList.toggle("selected", selection.selected.has(key));
    button.classList.toggle("focused", key === selection.focus);
    button.setAttribute("aria-pressed", String(selection.selected.has(key)));
  }
  if (reveal && selection.focus) cropOf(main, selection.focus)?.scrollIntoView({ block: "nearest" });
}

function cropOf(main: HTMLElement, key: string): HTMLElement | null {
  return main.querySelector<HTMLElement>(`.crop[data-key="${CSS.escape(key)}"]`);
}

/** Crops per row in the focused crop's group (groups flow side by side, each as wide as it needs). */
export function columns(main: HTMLElement, focus: string | null): number {
  const crops = (focus ? cropOf(main, focus)?.parentElement : null) ?? main.querySelector(".crops");
  return Math.max(1, Math.floor(((crops?.clientWidth ?? CROP) + GAP) / (CROP + GAP)));
}
