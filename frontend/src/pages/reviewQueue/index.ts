// The review queue: my batch of the model's least certain cells, one at a time, by a strategy the server lists, and
// one key per decision (a class, uncountable, not a white cell). Each decision is saved before the page moves on: a
// decision the server refuses stops the page on that cell with the reason and a retry, never silently skipped. The
// batch is held for me while the page is open (renewed every minute) and given back when I skip a cell or leave.
// Adjudicators see the conflicts of queued cells that both reviewers kept first.

import { describeError } from "../../api/http";
import { conflicts as conflictApi, type ReviewConflict } from "../../api/review";
import {
  decideCell,
  loadReviewQueue,
  releaseCells,
  renewHold,
  reviewStrategies,
  withdrawDecision,
  type ReviewQueue,
  type Verdict,
} from "../../api/reviewQueue";
import type { Page } from "../../context";
import { topClasses } from "../../logic/scores";
import { clear, h } from "../../ui/dom";
import { showError, showInfo } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import { chooseStrategy, decided, moved, START, undone, type QueueState } from "./state";
import { escalatedConflicts, renderItem, strategiesUnlisted, strategyPicker, type ReviewActions } from "./view";

const RENEW_MS = 60_000;

export const reviewQueuePage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Review queue"), h("p", { class: "muted" }, "Finding the least certain cells…"));
  const [taxonomy, { strategies, listed }] = await Promise.all([context.taxonomy(), reviewStrategies()]);
  let strategy = chooseStrategy(strategies, new URLSearchParams(location.search).get("strategy"));
  let queue: ReviewQueue = await loadReviewQueue(strategy);
  let state: QueueState = START;
  let saving = false;
  /** the decision the server refused, kept for a retry (the page stays on its cell) */
  let failed: { verdict: Verdict; classId: number | null; label: string; reason: string } | null = null;

  const view = h("div", { class: "review", id: "review" });
  const row = h("div", { class: "form-row" });
  const note = h("div");
  const escalated = h("div", { id: "escalated-section" });
  const problem = h("div", { id: "review-problem" });
  root.replaceChildren(h("h1", {}, "Review queue"), row, note, escalated, problem, view);

  function render(): void {
    const source = h(
      "span",
      { class: "muted small", id: "review-source" },
      `${queue.items.length} cells held for you · from ${queue.source}`,
    );
    const progress = h("span", { class: "small", id: "progress" }, `decided today: ${queue.decidedToday}`);
    clear(row, strategyPicker(strategies, strategy, actions), source, progress);
    clear(note, listed ? null : strategiesUnlisted());
    clear(escalated, queue.conflicts.length ? escalatedConflicts(queue.conflicts, taxonomy, adjudicate) : null);
    clear(
      problem,
      failed
        ? h(
            "div",
            { class: "error", id: "review-error", role: "alert" },
            h("strong", {}, `Not saved: ${failed.label}. `),
            h("span", {}, failed.reason),
            " ",
            h("button", { id: "review-retry", onclick: () => void retry() }, "Retry"),
          )
        : null,
    );
    const item = queue.items[state.index];
    const position = `cell ${state.index + 1} of ${queue.items.length}`;
    renderItem(view, item, position, item && state.decisions.get(item.cell.id), taxonomy, actions);
  }

  async function reload(): Promise<void> {
    try {
      queue = await loadReviewQueue(strategy);
      state = START;
      failed = null;
      render();
    } catch (error) {
      showError(error, "Loading the review queue");
    }
  }

  /** Save my decision on the cell shown; move on only once the server took it. */
  async function decide(verdict: Verdict, classId: number | null, label: string): Promise<void> {
    const index = state.index;
    const item = queue.items[index];
    if (!item || saving) return;
    if (state.decisions.has(item.cell.id)) {
      showInfo("You decided this cell already: undo (Ctrl+Z) to change it.");
      return;
    }
    saving = true;
    try {
      await decideCell(item.cell.id, verdict, classId);
      failed = null;
      queue.decidedToday += 1;
      state = decided(
        state,
        { cellId: item.cell.id, index },
        { label, classId, fieldId: item.field.id, key: null },
        queue.items.length,
      ).state;
      render();
      if (state.decisions.size === queue.items.length) await reload(); // the batch is done: the next one
    } catch (error) {
      failed = { verdict, classId, label, reason: describeError(error) };
      render();
    } finally {
      saving = false;
    }
  }

  async function retry(): Promise<void> {
    if (failed) await decide(failed.verdict, failed.classId, failed.label);
  }

  async function adjudicate(conflict: ReviewConflict, decision: "a" | "b" | "none"): Promise<void> {
    try {
      await conflictApi.resolve(conflict, { decision, reason: "review queue" });
      queue.conflicts = queue.conflicts.filter((c) => c.conflict.id !== conflict.id);
      render();
    } catch (error) {
      showError(error, "Deciding the conflict");
    }
  }

  const actions: ReviewActions = {
    classify: (classId) => void decide("class", classId, taxonomy.name(classId)),
    uncountable: () => void decide("uncountable", null, "uncountable"),
    notACell: () => void decide("not_a_cell", null, "not a cell"),
    skip() {
      const item = queue.items[state.index];
      if (item && !state.decisions.has(item.cell.id)) {
        void releaseCells([item.cell.id]).catch(() => undefined);
        queue.items = queue.items.filter((other) => other !== item);
        failed = null;
        state = { ...state, index: Math.min(state.index, Math.max(queue.items.length - 1, 0)) };
        if (!queue.items.length) void reload();
        render();
        return;
      }
      state = moved(state, 1, queue.items.length);
      render();
    },
    back() {
      state = moved(state, -1, queue.items.length);
      failed = null;
      render();
    },
    async chooseStrategy(name) {
      const chosen = strategies.find((s) => s.name === name) ?? null;
      window.history.replaceState(null, "", `?strategy=${encodeURIComponent(name)}`);
      strategy = chosen;
      await releaseCells().catch(() => undefined);
      await reload();
    },
  };

  async function undo(): Promise<void> {
    const last = state.trail[state.trail.length - 1];
    if (!last) {
      showInfo("Nothing to undo.");
      return;
    }
    try {
      await withdrawDecision(last.cellId);
      state = undone(state).state;
      queue.decidedToday = Math.max(queue.decidedToday - 1, 0);
      render();
    } catch (error) {
      showError(error, "Undoing the decision");
    }
  }

  const choiceAt = (rank: number) => () => {
    const item = queue.items[state.index];
    const choice = item ? topClasses(item.cell, 3)[rank] : undefined;
    if (choice) actions.classify(choice.classId);
  };

  render();
  const unbind = bindKeys("review", taxonomy, {
    classify: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) actions.classify(cls.id);
    },
    top1: choiceAt(0),
    top2: choiceAt(1),
    top3: choiceAt(2),
    uncountable: actions.uncountable,
    notACell: actions.notACell,
    skip: actions.skip,
    back: actions.back,
    undo: () => void undo(),
  });
  const renewing = window.setInterval(() => void renewHold().catch(() => undefined), RENEW_MS);
  const leave = (): void => void releaseCells().catch(() => undefined);
  window.addEventListener("pagehide", leave);
  return () => {
    unbind();
    window.clearInterval(renewing);
    window.removeEventListener("pagehide", leave);
    leave();
  };
};
