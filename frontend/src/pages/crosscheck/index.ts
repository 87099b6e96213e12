// The cross-check: after both annotators submitted a field, each disagreement shows A's and B's versions side by
// side on the field. An annotator of the field concedes or keeps; an adjudicator decides (A, B, no cell, or the box
// with a class of their own). Served by the double-review API.

import { fields as fieldApi } from "../../api/foundation";
import { ApiError, isMissingEndpoint } from "../../api/http";
import { conflicts as conflictApi, type ResolveBody, type ReviewConflict } from "../../api/review";
import type { Field } from "../../api/shapes";
import type { Page } from "../../context";
import { stepIndex } from "../../logic/geometry";
import { navigate } from "../../router";
import { clear, h } from "../../ui/dom";
import { showError, showInfo } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import {
  customDecision,
  fieldRows,
  firstUnsettled,
  isSettled,
  nextUnsettled,
  partIn,
  regionOf,
  withReason,
} from "./state";
import { conflictView, fieldTable, unavailable, type ConflictActions } from "./view";

/** The list: fields with conflicts, those waiting for me first. */
export const crosscheckListPage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Cross-check"));
  let all: ReviewConflict[];
  try {
    all = await conflictApi.list();
  } catch (error) {
    if (isMissingEndpoint(error)) return void root.append(unavailable());
    throw error;
  }
  root.append(fieldTable(fieldRows(all, context.has("adjudicator"))));
  return bindKeys("global", null, {});
};

/** One field's conflicts, one at a time. */
export const crosscheckFieldPage: Page = async (root, params, context) => {
  const fieldId = Number(params.field);
  const taxonomy = await context.taxonomy();
  let field: Field;
  let list: ReviewConflict[];
  let fieldsWithConflicts: number[];
  try {
    let all: ReviewConflict[];
    [field, list, all] = await Promise.all([fieldApi.get(fieldId), conflictApi.ofField(fieldId), conflictApi.list()]);
    fieldsWithConflicts = [...new Set(all.map((c) => c.field))];
  } catch (error) {
    if (isMissingEndpoint(error)) return void root.append(unavailable());
    throw error;
  }
  const adjudicator = context.has("adjudicator");
  let index = firstUnsettled(list);
  const reason = h("input", {
    type: "text",
    id: "reason",
    placeholder: "reason (optional, recorded)",
    "aria-label": "reason",
  });
  const view = h("div", { id: "crosscheck" });
  root.append(view);

  const actions: ConflictActions = {
    resolve: (body) => void resolve(body),
    decideClass(classId) {
      const body = list[index] ? customDecision(list[index], classId) : null;
      if (body) asAdjudicator(() => void resolve(body));
    },
  };

  function render(): void {
    const conflict = list[index];
    const part = conflict ? partIn(conflict, adjudicator) : "reader";
    const region = conflict ? regionOf(conflict) : { x: 0, y: 0, width: field.width, height: field.height };
    clear(view, conflictView({ field, list, index, part, region, taxonomy, reason }, actions));
  }

  async function resolve(body: ResolveBody): Promise<void> {
    const conflict = list[index];
    if (!conflict) return;
    if (isSettled(conflict)) {
      showInfo("This conflict is settled already.");
      return;
    }
    try {
      const updated = await conflictApi.resolve(conflict, withReason(body, reason.value, conflict));
      list[index] = updated;
      reason.value = "";
      showInfo(`Conflict ${index + 1}: ${updated.status}.`);
      index = nextUnsettled(list, index);
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
    if (list[index] && partIn(list[index], adjudicator) === "annotator") action();
    else showInfo("Concede and keep are for the field's two annotators.");
  }

  function asAdjudicator(action: () => void): void {
    if (list[index] && partIn(list[index], adjudicator) === "adjudicator") action();
    else showInfo("Only an adjudicator who did not annotate the field decides.");
  }

  function goField(step: 1 | -1): void {
    const position = fieldsWithConflicts.indexOf(fieldId);
    const next = fieldsWithConflicts[stepIndex(position, step, fieldsWithConflicts.length)];
    if (next !== undefined && next !== fieldId) navigate(`/crosscheck/${next}`);
  }

  function goConflict(step: 1 | -1): void {
    index = stepIndex(index, step, list.length);
    render();
  }

  render();
  return bindKeys("crosscheck", taxonomy, {
    nextConflict: () => goConflict(1),
    previousConflict: () => goConflict(-1),
    nextField: () => goField(1),
    previousField: () => goField(-1),
    concede: () => asAnnotator(() => void resolve({ decision: "concede" })),
    keep: () => asAnnotator(() => void resolve({ decision: "keep" })),
    decideA: () => asAdjudicator(() => void resolve({ decision: "a" })),
    decideB: () => asAdjudicator(() => void resolve({ decision: "b" })),
    decideNone: () => asAdjudicator(() => void resolve({ decision: "none" })),
    decideClass: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) actions.decideClass(cls.id);
    },
  });
};
