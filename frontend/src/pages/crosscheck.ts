// The cross-check: after both annotators submitted a field, each disagreement shows A's and B's versions side by
// side on the field. An annotator of the field concedes or keeps; an adjudicator decides (A, B, no cell, or the box
// with a class of their own). Served by the double-review API.

import { fields as fieldApi } from "../api/foundation";
import { ApiError, isMissingEndpoint } from "../api/http";
import { conflicts as conflictApi, type ResolveBody, type ReviewConflict } from "../api/review";
import type { Box, Field } from "../api/types";
import type { Page } from "../context";
import { cropView, stepIndex } from "../logic/geometry";
import type { Taxonomy } from "../logic/taxonomy";
import { navigate } from "../router";
import { clear, h, words } from "../ui/dom";
import { showError, showInfo } from "../ui/feedback";
import { bindKeys } from "../ui/keys";

const SIDE = 240;
const OVERVIEW = 520;
const UNSETTLED = new Set(["open", "escalated"]);

function unavailable(root: HTMLElement): void {
  root.append(
    h(
      "p",
      { class: "unavailable" },
      "The cross-check API is not available on this server yet (it arrives with the double-review issue).",
    ),
  );
}

function union(boxes: Box[]): Box {
  const x = Math.min(...boxes.map((b) => b.x));
  const y = Math.min(...boxes.map((b) => b.y));
  const right = Math.max(...boxes.map((b) => b.x + b.width));
  const bottom = Math.max(...boxes.map((b) => b.y + b.height));
  return { x, y, width: right - x, height: bottom - y };
}

/** The list: fields with conflicts, unsettled ones first. */
export const crosscheckListPage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Cross-check"));
  let all: ReviewConflict[];
  try {
    all = await conflictApi.list();
  } catch (error) {
    if (isMissingEndpoint(error)) return unavailable(root);
    throw error;
  }
  const byField = new Map<number, ReviewConflict[]>();
  for (const conflict of all) byField.set(conflict.field, [...(byField.get(conflict.field) ?? []), conflict]);
  const adjudicating = context.has("adjudicator");
  const rows = [...byField.entries()]
    .map(([field, list]) => ({
      field,
      list,
      waiting: list.filter((c) =>
        adjudicating ? UNSETTLED.has(c.status) : c.status === "open" && c.your_side && !c[c.your_side].decision,
      ).length,
    }))
    .sort((a, b) => b.waiting - a.waiting || a.field - b.field);
  if (!rows.length) {
    root.append(h("p", { class: "empty" }, "No conflicts: nothing waits for a cross-check."));
    return bindKeys("global", null, {});
  }
  root.append(
    h(
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
        rows.map(({ field, list, waiting }) =>
          h(
            "tr",
            { dataset: { field: String(field) } },
            h("td", {}, h("a", { href: `/crosscheck/${field}` }, `#${field}`)),
            h("td", { class: "num" }, list.length),
            h("td", { class: "num" }, waiting),
            h("td", { class: "num" }, list.filter((c) => c.status === "open").length),
            h("td", { class: "num" }, list.filter((c) => c.status === "escalated").length),
            h("td", { class: "num" }, list.filter((c) => !UNSETTLED.has(c.status)).length),
            h("td", {}, h("a", { class: "button", href: `/crosscheck/${field}` }, waiting ? "Resolve" : "View")),
          ),
        ),
      ),
    ),
  );
  return bindKeys("global", null, {});
};

function versionCard(
  title: string,
  side: ReviewConflict["a"],
  field: Field,
  region: Box,
  taxonomy: Taxonomy,
  colour: string,
): HTMLElement {
  const view = cropView(region, field.width, field.height, SIDE, 0.25);
  const cell = side.cell;
  const mark = cell
    ? h("div", {
        class: "mark",
        style: {
          left: `${cell.x * view.scale + view.offsetX}px`,
          top: `${cell.y * view.scale + view.offsetY}px`,
          width: `${cell.width * view.scale}px`,
          height: `${cell.height * view.scale}px`,
          borderColor: colour,
        },
      })
    : null;
  return h(
    "div",
    { class: "card version" },
    h("h3", {}, title, h("span", { class: "muted small" }, ` · ${side.annotator_username}`)),
    h(
      "div",
      {
        class: "field-context",
        style: {
          width: `${SIDE}px`,
          height: `${SIDE}px`,
          backgroundImage: `url("${field.image_url}")`,
          backgroundSize: `${view.backgroundWidth}px ${view.backgroundHeight}px`,
          backgroundPosition: `${view.offsetX}px ${view.offsetY}px`,
        },
      },
      mark,
    ),
    h(
      "div",
      { class: "version-text" },
      cell ? `${taxonomy.name(cell.cell_class)}${cell.countable ? "" : " · uncountable"}` : "no box here",
    ),
    h("div", { class: "muted small" }, `decision: ${side.decision || "none yet"}`),
  );
}

/** One field's conflicts, one at a time. */
export const crosscheckFieldPage: Page = async (root, params, context) => {
  const fieldId = Number(params.field);
  const taxonomy = await context.taxonomy();
  let field: Field;
  let list: ReviewConflict[];
  let fieldsWithConflicts: number[] = [];
  try {
    [field, list] = await Promise.all([fieldApi.get(fieldId), conflictApi.ofField(fieldId)]);
    fieldsWithConflicts = [...new Set((await conflictApi.list()).map((c) => c.field))];
  } catch (error) {
    if (isMissingEndpoint(error)) return unavailable(root);
    throw error;
  }
  const adjudicator = context.has("adjudicator");
  let index = Math.max(
    0,
    list.findIndex((c) => UNSETTLED.has(c.status)),
  );
  const reason = h("input", {
    type: "text",
    id: "reason",
    placeholder: "reason (optional, recorded)",
    "aria-label": "reason",
  });
  const view = h("div", { id: "crosscheck" });
  root.append(view);

  function render(): void {
    const conflict = list[index];
    if (!conflict) {
      clear(
        view,
        h("h1", {}, `Cross-check · field #${fieldId}`),
        h("p", { class: "empty" }, "This field has no conflicts."),
      );
      return;
    }
    const boxes = [conflict.a.cell, conflict.b.cell].filter((c): c is NonNullable<typeof c> => c !== null);
    const region = union(boxes);
    const scale = OVERVIEW / field.width;
    const mine = conflict.your_side;
    const settled = !UNSETTLED.has(conflict.status);
    const annotatorActions = mine
      ? [
          h(
            "button",
            { onclick: () => void resolve({ decision: "concede" }), disabled: settled || conflict.status !== "open" },
            "Concede: take theirs ",
            h("kbd", {}, "a"),
          ),
          h(
            "button",
            { onclick: () => void resolve({ decision: "keep" }), disabled: settled || conflict.status !== "open" },
            "Keep mine ",
            h("kbd", {}, "s"),
          ),
        ]
      : [];
    const adjudicatorActions =
      !mine && adjudicator
        ? [
            h(
              "button",
              {
                onclick: () => void resolve({ decision: "a" }),
                disabled: settled || (!conflict.a.cell && !conflict.b.cell),
              },
              "A's version ",
              h("kbd", {}, "h"),
            ),
            h(
              "button",
              { onclick: () => void resolve({ decision: "b" }), disabled: settled },
              "B's version ",
              h("kbd", {}, "l"),
            ),
            h(
              "button",
              { onclick: () => void resolve({ decision: "none" }), disabled: settled },
              "No cell ",
              h("kbd", {}, "x"),
            ),
            h("span", { class: "muted small" }, "or a class key: the box with that class"),
          ]
        : [];
    clear(
      view,
      h(
        "h1",
        {},
        `Cross-check · field #${fieldId}`,
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
            versionCard(mine === "a" ? "A (you)" : "A", conflict.a, field, region, taxonomy, "#1c7ed6"),
            versionCard(mine === "b" ? "B (you)" : "B", conflict.b, field, region, taxonomy, "#f76707"),
          ),
          h("div", { class: "tools", style: { marginTop: "0.6rem" } }, annotatorActions, adjudicatorActions),
          adjudicatorActions.length ? h("div", { class: "form-row", style: { marginTop: "0.4rem" } }, reason) : null,
          settled
            ? h(
                "p",
                { class: "small" },
                `Settled: ${conflict.resolution || conflict.status}${conflict.resolved_by_username ? ` by ${conflict.resolved_by_username}` : ""}${conflict.reason ? ` (${conflict.reason})` : ""}.`,
              )
            : null,
          !mine && !adjudicator
            ? h("p", { class: "muted" }, "You are not an annotator of this field: read-only.")
            : null,
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
          h(
            "div",
            {
              class: "field-context",
              style: {
                width: `${OVERVIEW}px`,
                height: `${field.height * scale}px`,
                backgroundImage: `url("${field.image_url}")`,
              },
            },
            list.map((c) =>
              [c.a.cell, c.b.cell].map((cell, side) =>
                cell
                  ? h("div", {
                      class: "mark",
                      style: {
                        left: `${cell.x * scale}px`,
                        top: `${cell.y * scale}px`,
                        width: `${cell.width * scale}px`,
                        height: `${cell.height * scale}px`,
                        borderColor: side === 0 ? "#1c7ed6" : "#f76707",
                        opacity: c === conflict ? "1" : "0.35",
                      },
                    })
                  : null,
              ),
            ),
          ),
          h("div", { class: "muted small" }, "A in blue, B in orange; the current conflict is solid."),
        ),
      ),
    );
  }

  async function resolve(body: ResolveBody): Promise<void> {
    const conflict = list[index];
    if (!conflict) return;
    if (!UNSETTLED.has(conflict.status)) {
      showInfo("This conflict is settled already.");
      return;
    }
    try {
      const reasonText = reason.value.trim();
      const updated = await conflictApi.resolve(
        conflict,
        reasonText && !conflict.your_side ? { ...body, reason: reasonText } : body,
      );
      list[index] = updated;
      reason.value = "";
      showInfo(`Conflict ${index + 1}: ${updated.status}.`);
      const next = list.findIndex((c, i) => i > index && UNSETTLED.has(c.status));
      if (next >= 0) index = next;
      render();
    } catch (error) {
      showError(error, "Resolving the conflict");
      if (error instanceof ApiError && error.status === 409) {
        // Someone was first: show the conflict as it is now.
        list = await conflictApi.ofField(fieldId);
        render();
      }
    }
  }

  function asAnnotator(action: () => void): void {
    if (list[index]?.your_side) action();
    else showInfo("Concede and keep are for the field's two annotators.");
  }

  function asAdjudicator(action: () => void): void {
    if (adjudicator && !list[index]?.your_side) action();
    else showInfo("Only an adjudicator who did not annotate the field decides.");
  }

  function decideClass(classId: number): void {
    const conflict = list[index];
    const box = conflict?.a.cell ?? conflict?.b.cell;
    if (!conflict || !box) return;
    asAdjudicator(
      () =>
        void resolve({
          decision: "custom",
          cell: { x: box.x, y: box.y, width: box.width, height: box.height, countable: true, cell_class: classId },
        }),
    );
  }

  function goField(step: 1 | -1): void {
    const position = fieldsWithConflicts.indexOf(fieldId);
    const next = fieldsWithConflicts[stepIndex(position, step, fieldsWithConflicts.length)];
    if (next !== undefined && next !== fieldId) navigate(`/crosscheck/${next}`);
  }

  render();
  return bindKeys("crosscheck", taxonomy, {
    nextConflict: () => {
      index = stepIndex(index, 1, list.length);
      render();
    },
    previousConflict: () => {
      index = stepIndex(index, -1, list.length);
      render();
    },
    nextField: () => goField(1),
    previousField: () => goField(-1),
    concede: () => asAnnotator(() => void resolve({ decision: "concede" })),
    keep: () => asAnnotator(() => void resolve({ decision: "keep" })),
    decideA: () => asAdjudicator(() => void resolve({ decision: "a" })),
    decideB: () => asAdjudicator(() => void resolve({ decision: "b" })),
    decideNone: () => asAdjudicator(() => void resolve({ decision: "none" })),
    decideClass: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) decideClass(cls.id);
    },
  });
};
