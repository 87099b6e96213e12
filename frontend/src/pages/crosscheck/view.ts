// The cross-check's views: the list of fields with conflicts, and one conflict with A's and B's versions side by
// side, the actions of the reader's part, and the whole field with every conflict's boxes.

import type { ConflictSide, ResolveBody, ReviewConflict } from "../../api/review";
import type { Box, Field } from "../../api/shapes";
import { cropView } from "../../logic/geometry";
import type { Taxonomy } from "../../logic/taxonomy";
import { cropBackground, fieldOverview, markElement, type Mark } from "../../ui/crops";
import { h, words } from "../../ui/dom";
import { classPalette } from "../../ui/palette";
import { isSettled, type FieldRow, type Part } from "./state";

const SIDE = 240;
const OVERVIEW = 520;
const COLOURS = { a: "#1c7ed6", b: "#f76707" } as const;

export function unavailable(): HTMLElement {
  return h(
    "p",
    { class: "unavailable" },
    "The cross-check API is not available on this server yet (it arrives with the double-review issue).",
  );
}

export function fieldTable(rows: readonly FieldRow[]): HTMLElement {
  if (!rows.length) return h("p", { class: "empty" }, "No conflicts: nothing waits for a cross-check.");
  return h(
    "table",
    { class: "grid crosscheck-list" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Field", "Conflicts", "Waiting for you", "Open", "Escalated", "Settled", ""].map((t) => h("th", {}, t)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          { dataset: { field: String(row.field) } },
          h("td", {}, h("a", { href: `/crosscheck/${row.field}` }, `#${row.field}`)),
          h("td", { class: "num" }, row.conflicts.length),
          h("td", { class: "num" }, row.waiting),
          h("td", { class: "num" }, row.open),
          h("td", { class: "num" }, row.escalated),
          h("td", { class: "num" }, row.settled),
          h("td", {}, h("a", { class: "button", href: `/crosscheck/${row.field}` }, row.waiting ? "Resolve" : "View")),
        ),
      ),
    ),
  );
}

function versionCard(title: string, side: ConflictSide, field: Field, region: Box, taxonomy: Taxonomy, colour: string) {
  const view = cropView(region, field.width, field.height, SIDE, 0.25);
  const cell = side.cell;
  return h(
    "div",
    { class: "card version" },
    h("h3", {}, title, h("span", { class: "muted small" }, ` · ${side.annotator_username ?? "an annotator"}`)),
    h(
      "div",
      { class: "field-context", style: { width: `${SIDE}px`, height: `${SIDE}px`, ...cropBackground(field, view) } },
      cell ? markElement({ box: cell, colour }, view.scale, view.offsetX, view.offsetY) : null,
    ),
    h(
      "div",
      { class: "version-text" },
      cell ? `${taxonomy.name(cell.cell_class)}${cell.countable ? "" : " · uncountable"}` : "no box here",
    ),
    h("div", { class: "muted small" }, `decision: ${side.decision || "none yet"}`),
  );
}

export interface ConflictActions {
  resolve(body: ResolveBody): void;
  decideClass(classId: number): void;
}

export interface ConflictView {
  field: Field;
  list: readonly ReviewConflict[];
  index: number;
  part: Part;
  region: Box;
  taxonomy: Taxonomy;
  /** the adjudicator's reason input (kept across renders so typing is not lost) */
  reason: HTMLInputElement;
}

function actionButtons(conflict: ReviewConflict, part: Part, actions: ConflictActions): HTMLElement[] {
  const settled = isSettled(conflict);
  const button = (label: string, key: string, body: ResolveBody, disabled: boolean) =>
    h("button", { onclick: () => actions.resolve(body), disabled }, label, h("kbd", {}, key));
  if (part === "annotator") {
    const closed = settled || conflict.status !== "open";
    return [
      button("Concede: take theirs ", "a", { decision: "concede" }, closed),
      button("Keep mine ", "s", { decision: "keep" }, closed),
    ];
  }
  if (part === "adjudicator")
    return [
      button("A's version ", "h", { decision: "a" }, settled || (!conflict.a.cell && !conflict.b.cell)),
      button("B's version ", "l", { decision: "b" }, settled),
      button("No cell ", "x", { decision: "none" }, settled),
      h("span", { class: "muted small" }, "or a class (key or palette): the box with that class"),
    ];
  return [];
}

export function conflictView(state: ConflictView, actions: ConflictActions): HTMLElement[] {
  const { field, list, index, part, region, taxonomy } = state;
  const conflict = list[index];
  const title = `Cross-check · field #${field.id}`;
  if (!conflict) return [h("h1", {}, title), h("p", { class: "empty" }, "This field has no conflicts.")];
  const mine = conflict.your_side;
  const settled = isSettled(conflict);
  const overviewMarks: Mark[] = list.flatMap((c) =>
    (["a", "b"] as const).flatMap((side) => {
      const cell = c[side].cell;
      return cell ? [{ box: cell, colour: COLOURS[side], opacity: c === conflict ? 1 : 0.35 }] : [];
    }),
  );
  return [
    h(
      "h1",
      {},
      title,
      h(
        "span",
        { class: "muted small" },
        ` · conflict ${index + 1} of ${list.length} · ${conflict.kinds.map(words).join(", ")} · `,
      ),
      h("span", { class: `status ${conflict.status}`, id: "conflict-status" }, conflict.status),
    ),
    h(
      "div",
      { class: "two-col" },
      h(
        "div",
        {},
        h(
          "div",
          { class: "cards" },
          versionCard(mine === "a" ? "A (you)" : "A", conflict.a, field, region, taxonomy, COLOURS.a),
          versionCard(mine === "b" ? "B (you)" : "B", conflict.b, field, region, taxonomy, COLOURS.b),
        ),
        h("div", { class: "tools", style: { marginTop: "0.6rem" } }, actionButtons(conflict, part, actions)),
        part === "adjudicator"
          ? [
              h("div", { class: "form-row", style: { marginTop: "0.4rem" } }, state.reason),
              classPalette(taxonomy, { onPick: actions.decideClass, disabled: settled }),
            ]
          : null,
        settled
          ? h(
              "p",
              { class: "small" },
              `Settled: ${conflict.resolution || conflict.status}${conflict.resolved_by_username ? ` by ${conflict.resolved_by_username}` : ""}${conflict.reason ? ` (${conflict.reason})` : ""}.`,
            )
          : null,
        part === "reader" ? h("p", { class: "muted" }, "You are not an annotator of this field: read-only.") : null,
        h(
          "p",
          { class: "muted small" },
          h("kbd", {}, "j"),
          " / ",
          h("kbd", {}, "k"),
          " next / previous conflict · ",
          h("kbd", {}, "]"),
          " / ",
          h("kbd", {}, "["),
          " next / previous field · ",
          h("kbd", {}, "?"),
          " all keys",
        ),
      ),
      h(
        "div",
        {},
        fieldOverview(field, OVERVIEW, overviewMarks, "the field with every conflict"),
        h("div", { class: "muted small" }, "A in blue, B in orange; the current conflict is solid."),
      ),
    ),
  ];
}
