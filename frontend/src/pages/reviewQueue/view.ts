// The review queue's view: the strategy picker, and one model cell at a time (its crop, its place in the field,
// the model's top three, the other decisions and the class palette). Rendered whole on each change.

import type { ReviewConflict } from "../../api/review";
import type { ReviewItem, ReviewStrategy } from "../../api/reviewQueue";
import type { Field } from "../../api/shapes";
import { boxUnion, cropView } from "../../logic/geometry";
import { countableProbability, percent, topClasses } from "../../logic/scores";
import type { Taxonomy } from "../../logic/taxonomy";
import { cropBackground, fieldOverview, markElement, type Mark } from "../../ui/crops";
import { clear, h } from "../../ui/dom";
import { classPalette } from "../../ui/palette";
import type { Decision } from "./state";

const CROP = 288;
const CONTEXT_WIDTH = 520;
/** an escalated cell's crop, with A's and B's boxes in the cross-check's colours */
const CONFLICT_CROP = 240;
const CONFLICT_COLOURS = { a: "#1c7ed6", b: "#f76707" } as const;
/** the keys of the model's first, second and third class (keyboard/keymap.ts, review scope) */
const CHOICE_KEYS = ["a", "s", "d"];

export interface ReviewActions {
  classify(classId: number): void;
  uncountable(): void;
  notACell(): void;
  skip(): void;
  back(): void;
  chooseStrategy(name: string): void;
}

/** The strategy picker (and its description), for the row above the queue. */
export function strategyPicker(
  strategies: readonly ReviewStrategy[],
  chosen: ReviewStrategy | null,
  actions: Pick<ReviewActions, "chooseStrategy">,
): HTMLElement[] {
  const select = h(
    "select",
    { id: "strategy", "aria-label": "which cells first" },
    strategies.map((s) =>
      h("option", { value: s.name, selected: s.name === chosen?.name, title: s.description || null }, s.label),
    ),
  );
  select.addEventListener("change", () => actions.chooseStrategy(select.value));
  const description = chosen?.description
    ? h("span", { class: "muted small", id: "strategy-description" }, chosen.description)
    : null;
  return [h("label", {}, "First", select), ...(description ? [description] : [])];
}

/** Said where the server does not list its strategies (the picker offers those its review queue accepts). */
export function strategiesUnlisted(): HTMLElement {
  return h(
    "p",
    { class: "unavailable small", id: "strategies-unlisted" },
    "The list of review strategies is not on this server: these are the ones its review queue accepts.",
  );
}

export function renderItem(
  view: HTMLElement,
  item: ReviewItem | undefined,
  position: string,
  decision: Decision | undefined,
  taxonomy: Taxonomy,
  actions: ReviewActions,
): void {
  if (!item) {
    clear(
      view,
      h("p", { class: "empty" }, "The queue is empty: every queued cell has its two decisions or is held by two."),
    );
    return;
  }
  const { cell, field } = item;
  const choices = topClasses(cell, 3);
  clear(
    view,
    h(
      "div",
      {},
      h("div", {
        class: "big-crop",
        role: "img",
        "aria-label": "the cell",
        style: cropBackground(field, cropView(cell, field.width, field.height, CROP, 0.35)),
      }),
      h("div", { class: "small", id: "review-position" }, `${position} · field #${field.id} · case ${field.case_code}`),
      h(
        "div",
        { class: "small muted" },
        `confidence ${percent(cell.confidence)} · margin ${percent(cell.margin)} · detector ${percent(cell.detector_score)}` +
          ` · countable ${percent(countableProbability(cell.scores))}`,
      ),
      decision ? h("div", { class: "tag mine", id: "decided" }, `decided: ${decision.label}`) : null,
    ),
    h(
      "div",
      {},
      fieldOverview(field, CONTEXT_WIDTH, [{ box: cell }], "the cell in its field"),
      h("a", { class: "small", href: `/fields/${field.id}` }, "open the field in the annotator"),
    ),
    h(
      "div",
      {},
      h("h3", {}, "The model's top three"),
      h(
        "ol",
        { class: "decision-list", id: "choices" },
        choices.map((choice, rank) =>
          h(
            "li",
            {},
            h(
              "button",
              { onclick: () => actions.classify(choice.classId), dataset: { class: String(choice.classId) } },
              h("span", {}, h("kbd", {}, CHOICE_KEYS[rank]), " ", taxonomy.name(choice.classId)),
              h("span", { class: "muted" }, percent(choice.probability)),
            ),
            h(
              "div",
              { class: "bar" },
              h("span", { style: { width: `${Math.round((choice.probability || 0) * 100)}%` } }),
            ),
          ),
        ),
      ),
      h("h3", {}, "Other decisions"),
      h(
        "div",
        { class: "tools" },
        h("button", { onclick: actions.uncountable }, "Uncountable ", h("kbd", {}, "c")),
        h("button", { onclick: actions.notACell }, "Not a cell ", h("kbd", {}, "x")),
        h("button", { onclick: actions.skip, id: "review-skip" }, "Skip ", h("kbd", {}, "j")),
        h("button", { onclick: actions.back }, "Back ", h("kbd", {}, "k")),
      ),
      h("h3", {}, "Another class"),
      classPalette(taxonomy, { onPick: actions.classify, active: decision?.classId ?? null }),
    ),
  );
}

/** In words: what one side of a queued cell's conflict decided. */
function verdictWords(cell: ReviewConflict["a"]["cell"], taxonomy: Taxonomy): string {
  if (!cell) return "no cell";
  const verdict = (cell as { verdict?: string }).verdict;
  if (verdict === "not_a_cell") return "not a white cell";
  if (verdict === "uncountable" || !cell.countable) return "uncountable";
  return cell.cell_class === null ? "a cell" : taxonomy.name(cell.cell_class);
}

/** One escalated cell on its crop: A's box (blue) and B's (orange) over the field around them. */
function conflictCrop(conflict: ReviewConflict, field: Field): HTMLElement {
  const marks: Mark[] = [];
  for (const side of ["a", "b"] as const) {
    const cell = conflict[side].cell;
    if (cell) marks.push({ box: cell, colour: CONFLICT_COLOURS[side] });
  }
  if (!marks.length) return h("div", { class: "conflict-crop muted small" }, "no box");
  const region = boxUnion(marks.map((mark) => mark.box));
  const view = cropView(region, field.width, field.height, CONFLICT_CROP, 0.5);
  return h(
    "div",
    {
      class: "conflict-crop field-context",
      style: { width: `${CONFLICT_CROP}px`, height: `${CONFLICT_CROP}px`, ...cropBackground(field, view) },
    },
    marks.map((mark) => markElement(mark, view.scale, view.offsetX, view.offsetY)),
  );
}

/** Adjudicators: the queued cells both reviewers kept their decision on, each on its crop, decided with one click. */
export function escalatedConflicts(
  conflicts: readonly { conflict: ReviewConflict; field: Field }[],
  taxonomy: Taxonomy,
  decide: (conflict: ReviewConflict, decision: "a" | "b" | "none") => void,
): HTMLElement {
  return h(
    "section",
    { id: "escalated" },
    h("h2", {}, `Escalated cells (${conflicts.length})`),
    h(
      "ul",
      { class: "decision-list" },
      conflicts.map(({ conflict, field }) =>
        h(
          "li",
          { dataset: { conflict: String(conflict.id) } },
          conflictCrop(conflict, field),
          h("span", {}, `field #${conflict.field} · `),
          h(
            "span",
            { style: { color: CONFLICT_COLOURS.a } },
            `${conflict.a.annotator_username ?? "A"}: ${verdictWords(conflict.a.cell, taxonomy)}`,
          ),
          h("span", {}, " vs "),
          h(
            "span",
            { style: { color: CONFLICT_COLOURS.b } },
            `${conflict.b.annotator_username ?? "B"}: ${verdictWords(conflict.b.cell, taxonomy)}`,
          ),
          " ",
          h("button", { onclick: () => decide(conflict, "a") }, "A is right"),
          h("button", { onclick: () => decide(conflict, "b") }, "B is right"),
          h("button", { onclick: () => decide(conflict, "none") }, "Not a cell"),
        ),
      ),
    ),
  );
}
