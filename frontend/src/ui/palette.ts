// The class palette: the taxonomy's classes grouped by lineage (in the lineage's colour), each with its shortcut
// key. One component for every page that chooses a class (annotator, gallery, review queue, cross-check) and for
// the keyboard map's list of class keys, so a class shows alike everywhere.

import type { Taxonomy } from "../logic/taxonomy";
import { LINEAGE_COLOURS } from "../logic/taxonomy";
import { h } from "./dom";

export interface PaletteOptions {
  /** what choosing a class does; without it the palette is a legend (the keyboard map) */
  onPick?: (classId: number) => void;
  /** the class of the current selection, highlighted */
  active?: number | null;
  /** a number beside each class (e.g. the cells of that class so far) */
  counts?: ReadonlyMap<number, number>;
  disabled?: boolean;
  /** an extra CSS class (the gallery's palette is a drop target) */
  variant?: string;
}

export function classPalette(taxonomy: Taxonomy, options: PaletteOptions = {}): HTMLElement {
  const { onPick, active = null, counts, disabled = false, variant } = options;
  return h(
    "div",
    {
      class: ["palette", onPick ? "" : "legend", variant ?? ""].filter(Boolean).join(" "),
      role: "group",
      "aria-label": onPick ? "class palette" : "class keys",
    },
    taxonomy.groups().map((group) =>
      h(
        "div",
        { class: "lineage", style: { borderLeftColor: LINEAGE_COLOURS[group.lineage] } },
        h("div", { class: "lineage-name" }, group.lineage),
        group.classes.map((cls) => {
          const content = [
            h("kbd", {}, cls.shortcut),
            h("span", { class: "name" }, cls.name, cls.is_blast ? h("sup", {}, "blast") : null),
          ];
          if (!onPick) return h("span", { class: "class-entry", dataset: { class: String(cls.id) } }, content);
          return h(
            "button",
            {
              type: "button",
              class: `class-button${active === cls.id ? " active" : ""}`,
              dataset: { class: String(cls.id) },
              title: `${cls.name} (key ${cls.shortcut})`,
              disabled,
              onclick: () => onPick(cls.id),
            },
            content,
            counts ? h("span", { class: "count" }, counts.get(cls.id) || "") : null,
          );
        }),
      ),
    ),
  );
}
