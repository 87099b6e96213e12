// The review queue: the model's least certain cells one at a time, the crop and its place in the field, the top
// three classes with their probabilities, and one key per decision. A decision is saved into my own set of the
// field as a cell that came from the suggestion.

import { annotationSets, cellWriter, ensureMySet } from "../api/foundation";
import { loadReviewQueue, STRATEGIES, type ReviewItem } from "../api/reviewQueue";
import type { Page } from "../context";
import { cropView } from "../logic/geometry";
import { countableProbability, percent, topClasses } from "../logic/scores";
import { SetEditor } from "../logic/setEditor";
import { clear, h } from "../ui/dom";
import { showError, showInfo } from "../ui/feedback";
import { bindKeys } from "../ui/keys";

const CROP = 288;
const CONTEXT_WIDTH = 520;

interface Decision {
  label: string;
  fieldId: number;
  key: string | null;
}

export const reviewQueuePage: Page = async (root, _params, context) => {
  root.append(h("h1", {}, "Review queue"), h("p", { class: "muted" }, "Finding the least certain cells…"));
  const strategy = new URLSearchParams(location.search).get("strategy") ?? undefined;
  const [taxonomy, firstQueue] = await Promise.all([context.taxonomy(), loadReviewQueue(context.me, strategy)]);
  let queue = firstQueue;
  const editors = new Map<number, SetEditor>();
  const decisions = new Map<number, Decision>();
  const trail: number[] = []; // indexes decided, in order (for undo)
  let index = 0;

  async function editorFor(item: ReviewItem): Promise<SetEditor> {
    let editor = editors.get(item.field.id);
    if (!editor) {
      const existing = item.mySet ? await annotationSets.cells(item.mySet.id) : null;
      editor = new SetEditor({
        setId: item.mySet?.id ?? null,
        version: existing?.version ?? item.mySet?.version ?? 1,
        cells: existing?.cells ?? [],
        writer: cellWriter,
        async ensureSet() {
          const set = await ensureMySet(item.field.id, context.me);
          const cells = set.cell_count ? await annotationSets.cells(set.id) : null;
          return { id: set.id, version: cells?.version ?? set.version, cells: cells?.cells };
        },
      });
      let lastMessage = "";
      editor.onChange(() => {
        if (editor?.conflict) editor.keepMine();
        const message = editor?.message ?? "";
        if (message && message !== lastMessage && editor?.state !== "offline")
          showError(new Error(`Field #${item.field.id}: ${message}`));
        lastMessage = message;
      });
      editors.set(item.field.id, editor);
    }
    return editor;
  }

  const view = h("div", { class: "review", id: "review" });
  const header = h("span", { class: "muted small" });
  const strategies = h(
    "select",
    { id: "strategy", "aria-label": "which cells first" },
    STRATEGIES.map((s) =>
      h("option", { value: s, selected: s === (strategy ?? STRATEGIES[0]) }, s.replaceAll("_", " ")),
    ),
  );
  strategies.addEventListener("change", async () => {
    window.history.replaceState(null, "", `?strategy=${strategies.value}`);
    try {
      queue = await loadReviewQueue(context.me, strategies.value);
      index = 0;
      render();
    } catch (error) {
      showError(error, "Loading the review queue");
    }
  });
  root.replaceChildren(
    h("h1", {}, "Review queue"),
    h("div", { class: "form-row" }, queue.strategies.length ? h("label", {}, "First", strategies) : null, header),
    view,
  );

  function render(): void {
    header.textContent = `${queue.items.length} cells waiting · from ${queue.source}`;
    const item = queue.items[index];
    if (!item) {
      clear(view, h("p", { class: "empty" }, "The queue is empty: every uncertain cell has a decision."));
      return;
    }
    const { cell, field } = item;
    const crop = cropView(cell, field.width, field.height, CROP, 0.35);
    const scale = CONTEXT_WIDTH / field.width;
    const choices = topClasses(cell, 3);
    const decided = decisions.get(cell.id);
    const choiceKeys = ["a", "s", "d"];
    clear(
      view,
      h(
        "div",
        {},
        h("div", {
          class: "big-crop",
          role: "img",
          "aria-label": "the cell",
          style: {
            backgroundImage: `url("${field.image_url}")`,
            backgroundSize: `${crop.backgroundWidth}px ${crop.backgroundHeight}px`,
            backgroundPosition: `${crop.offsetX}px ${crop.offsetY}px`,
          },
        }),
        h(
          "div",
          { class: "small" },
          `cell ${index + 1} of ${queue.items.length} · field #${field.id} · case ${field.case_code}`,
        ),
        h(
          "div",
          { class: "small muted" },
          `confidence ${percent(cell.confidence)} · margin ${percent(cell.margin)} · detector ${percent(cell.detector_score)}` +
            ` · countable ${percent(countableProbability(cell.scores))}`,
        ),
        decided ? h("div", { class: "tag mine", id: "decided" }, `decided: ${decided.label}`) : null,
      ),
      h(
        "div",
        {},
        h(
          "div",
          {
            class: "field-context",
            role: "img",
            "aria-label": "the cell in its field",
            style: {
              width: `${CONTEXT_WIDTH}px`,
              height: `${field.height * scale}px`,
              backgroundImage: `url("${field.image_url}")`,
            },
          },
          h("div", {
            class: "mark",
            style: {
              left: `${cell.x * scale}px`,
              top: `${cell.y * scale}px`,
              width: `${cell.width * scale}px`,
              height: `${cell.height * scale}px`,
            },
          }),
        ),
        h("a", { class: "small", href: `/fields/${field.id}` }, "open the field in the annotator"),
      ),
      h(
        "div",
        {},
        h("h3", {}, "The model's top three"),
        h(
          "ol",
          { class: "decision-list", id: "choices" },
          choices.map((choice, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  onclick: () => void decide({ cell_class: choice.classId }),
                  dataset: { class: String(choice.classId) },
                },
                h("span", {}, h("kbd", {}, choiceKeys[i]), " ", taxonomy.name(choice.classId)),
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
          h("button", { onclick: () => void decide({ countable: false }) }, "Uncountable ", h("kbd", {}, "c")),
          h("button", { onclick: () => decideNotACell() }, "Not a cell ", h("kbd", {}, "x")),
          h("button", { onclick: () => go(1) }, "Skip ", h("kbd", {}, "j")),
          h("button", { onclick: () => go(-1) }, "Back ", h("kbd", {}, "k")),
        ),
        h("p", { class: "small muted" }, "Any class key (", h("kbd", {}, "?"), " lists them) decides that class."),
      ),
    );
  }

  function go(step: 1 | -1): void {
    index = Math.min(Math.max(index + step, 0), Math.max(queue.items.length - 1, 0));
    render();
  }

  async function decide(change: { cell_class?: number; countable?: boolean }): Promise<void> {
    const item = queue.items[index];
    if (!item) return;
    if (!context.has("annotator")) {
      showInfo("Only annotators decide review-queue cells.");
      return;
    }
    try {
      const editor = await editorFor(item);
      const previous = decisions.get(item.cell.id);
      if (previous?.key) editor.remove(previous.key);
      const { cell } = item;
      const data = {
        x: cell.x,
        y: cell.y,
        width: cell.width,
        height: cell.height,
        countable: cell.countable,
        cell_class: cell.cell_class,
        source_cell: cell.id,
        ...change,
      };
      const key = editor.create(data);
      decisions.set(cell.id, {
        label: data.countable ? taxonomy.name(data.cell_class) : "uncountable",
        fieldId: item.field.id,
        key,
      });
      trail.push(index);
      go(1);
    } catch (error) {
      showError(error, "Saving the decision");
    }
  }

  function decideNotACell(): void {
    const item = queue.items[index];
    if (!item) return;
    decisions.set(item.cell.id, { label: "not a cell", fieldId: item.field.id, key: null });
    trail.push(index);
    go(1);
  }

  function undo(): void {
    const last = trail.pop();
    if (last === undefined) {
      showInfo("Nothing to undo.");
      return;
    }
    const item = queue.items[last];
    const decision = decisions.get(item.cell.id);
    if (decision?.key) editors.get(decision.fieldId)?.remove(decision.key);
    decisions.delete(item.cell.id);
    index = last;
    render();
  }

  const choiceAt = (rank: number) => () => {
    const choice = topClasses(queue.items[index]?.cell ?? { scores: {}, cell_class: null, confidence: null }, 3)[rank];
    if (choice) void decide({ cell_class: choice.classId, countable: true });
  };

  render();
  return bindKeys("review", taxonomy, {
    classify: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) void decide({ cell_class: cls.id, countable: true });
    },
    top1: choiceAt(0),
    top2: choiceAt(1),
    top3: choiceAt(2),
    uncountable: () => void decide({ countable: false }),
    notACell: decideNotACell,
    skip: () => go(1),
    back: () => go(-1),
    undo,
  });
};
