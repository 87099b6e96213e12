// The review queue: the model's least certain cells one at a time, by a strategy the server lists, and one key per
// decision. A decision takes the model's cell over into my own set of its field (the server's /accept, so the cell
// names the model's cell), with the class I chose.

import { annotationSets } from "../../api/foundation";
import { loadReviewQueue, reviewStrategies, type ReviewItem } from "../../api/reviewQueue";
import type { Page } from "../../context";
import type { CellChanges } from "../../logic/edits";
import { topClasses } from "../../logic/scores";
import type { SetEditor } from "../../logic/setEditor";
import { clear, h } from "../../ui/dom";
import { showError, showInfo } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import { mySetEditor, saveUnattended } from "../shared/editing";
import { chooseStrategy, decided, moved, START, undone, type Decision, type QueueState } from "./state";
import { renderItem, strategiesUnlisted, strategyPicker, type ReviewActions } from "./view";

export const reviewQueuePage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Review queue"), h("p", { class: "muted" }, "Finding the least certain cells…"));
  const [taxonomy, { strategies, listed }] = await Promise.all([context.taxonomy(), reviewStrategies()]);
  let strategy = chooseStrategy(strategies, new URLSearchParams(location.search).get("strategy"));
  let queue = await loadReviewQueue(context.me, strategy);
  let state: QueueState = START;
  const editors = new Map<number, Promise<SetEditor>>();
  const stops: Array<() => void> = [];

  /** My set's editor on the item's field (its cells loaded once). */
  function editorFor(item: ReviewItem): Promise<SetEditor> {
    let editor = editors.get(item.field.id);
    if (!editor) {
      editor = (async () => {
        const existing = item.mySet ? await annotationSets.cells(item.mySet.id) : null;
        const created = mySetEditor(item.field.id, context.me, {
          set: item.mySet,
          cells: existing?.cells ?? [],
          version: existing?.version ?? null,
        });
        stops.push(saveUnattended(created, item.field.id));
        return created;
      })();
      editor.catch(() => editors.delete(item.field.id));
      editors.set(item.field.id, editor);
    }
    return editor;
  }

  const view = h("div", { class: "review", id: "review" });
  const row = h("div", { class: "form-row" });
  const note = h("div");
  root.replaceChildren(h("h1", {}, "Review queue"), row, note, view);

  function render(): void {
    const source = h(
      "span",
      { class: "muted small", id: "review-source" },
      `${queue.items.length} cells waiting · from ${queue.source}`,
    );
    clear(row, queue.byStrategy ? strategyPicker(strategies, strategy, actions) : null, source);
    clear(note, queue.byStrategy && !listed ? strategiesUnlisted() : null);
    const item = queue.items[state.index];
    const position = `cell ${state.index + 1} of ${queue.items.length}`;
    renderItem(view, item, position, item && state.decisions.get(item.cell.id), taxonomy, actions);
  }

  function go(step: 1 | -1): void {
    state = moved(state, step, queue.items.length);
    render();
  }

  /** Take my cell of a decision back (undo, or a new decision for the same model cell). */
  function takeBack(decision: Decision | null): void {
    const key = decision?.key;
    if (key) void editors.get(decision.fieldId)?.then((editor) => editor.remove(key));
  }

  /** Record a decision for the model cell at `index`, replacing an earlier one for it. */
  function record(index: number, item: ReviewItem, decision: Decision): void {
    const result = decided(state, { cellId: item.cell.id, index }, decision, queue.items.length);
    state = result.state;
    takeBack(result.replaced);
    render();
  }

  /** The model's cell is a cell: taken over into my set with `changes` (a class, or uncountable). */
  async function keep(changes: CellChanges, label: string): Promise<void> {
    const index = state.index;
    const item = queue.items[index];
    if (!item) return;
    if (!context.has("annotator")) {
      showInfo("Only annotators decide review-queue cells.");
      return;
    }
    try {
      const editor = await editorFor(item);
      const key = editor.accept(item.cell, changes);
      const classId = changes.countable === false ? null : (changes.cell_class ?? null);
      record(index, item, { label, classId, fieldId: item.field.id, key });
    } catch (error) {
      showError(error, "Saving the decision");
    }
  }

  const actions: ReviewActions = {
    classify: (classId) => void keep({ cell_class: classId, countable: true }, taxonomy.name(classId)),
    uncountable: () => void keep({ countable: false }, "uncountable"),
    notACell() {
      const item = queue.items[state.index];
      if (item) record(state.index, item, { label: "not a cell", classId: null, fieldId: item.field.id, key: null });
    },
    skip: () => go(1),
    back: () => go(-1),
    async chooseStrategy(name) {
      const chosen = strategies.find((s) => s.name === name) ?? null;
      window.history.replaceState(null, "", `?strategy=${encodeURIComponent(name)}`);
      try {
        queue = await loadReviewQueue(context.me, chosen);
        strategy = chosen;
        state = { ...state, index: 0 };
        render();
      } catch (error) {
        showError(error, "Loading the review queue");
      }
    },
  };

  function undo(): void {
    const result = undone(state);
    if (!result.undone) {
      showInfo("Nothing to undo.");
      return;
    }
    takeBack(result.undone);
    state = result.state;
    render();
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
    undo,
  });
  return () => {
    unbind();
    for (const stop of stops) stop();
  };
};
