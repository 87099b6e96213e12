// The cell gallery (CellaVision style): crops of every cell of a smear or case grouped by class, least confident
// first; select one or many and reclassify by key or by dragging onto a class; mark uncountable; the differential
// count on the side follows every change. An annotator's changes are saved into their own set of each field (a
// model suggestion that is reclassified or confirmed becomes their cell); others see the truth read-only.

import { annotationSets, ensureMySet, fields as fieldApi, smears } from "../api/foundation";
import type { AnnotationSet, Cell, Field } from "../api/types";
import type { Page } from "../context";
import { differential, share } from "../logic/differential";
import {
  groupItems,
  fieldItems,
  jumpGroup,
  moveFocus,
  range,
  type GalleryGroup,
  type GalleryItem,
  type GroupId,
  type Direction,
} from "../logic/gallery";
import { cropView } from "../logic/geometry";
import { percent } from "../logic/scores";
import { SetEditor } from "../logic/setEditor";
import { LINEAGE_COLOURS } from "../logic/taxonomy";
import { navigate } from "../router";
import { clear, h } from "../ui/dom";
import { showError, showInfo, withProgress } from "../ui/feedback";
import { bindKeys } from "../ui/keys";
import { cellWriter as writer } from "../api/foundation";
import { myAssignedFields } from "../api/review";

const CROP = 96;
const MARGIN = 0.2;

interface FieldState {
  field: Field;
  mySet: AnnotationSet | null;
  editor: SetEditor | null;
  suggestions: Cell[];
  truth: Cell[];
}

/** Run `tasks` with at most `limit` in flight, reporting progress. */
async function pool<T>(
  tasks: Array<() => Promise<T>>,
  limit: number,
  report: (done: number, total: number) => void,
): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
      report(++done, tasks.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

function newestPrediction(sets: AnnotationSet[]): AnnotationSet | undefined {
  return sets.filter((s) => s.kind === "prediction").sort((a, b) => b.id - a.id)[0];
}

export const galleryPage: Page = async (root, params, context) => {
  const scope = params.scope === "case" ? "case" : "smear";
  const scopeId = Number(params.id);
  const annotating = context.has("annotator");
  root.append(h("p", { class: "muted" }, "Loading the gallery…"));
  const taxonomy = await context.taxonomy();
  const caseId = scope === "case" ? scopeId : (await smears.get(scopeId)).case;
  const [fieldList, sets, assigned] = await Promise.all([
    fieldApi.list(scope === "case" ? { case: scopeId } : { smear: scopeId }),
    annotationSets.list({ case: caseId }),
    annotating ? myAssignedFields() : Promise.resolve(null),
  ]);
  const fieldsById = new Map(fieldList.map((f) => [f.id, f]));

  const states: FieldState[] = await withProgress("Loading cells", (report) =>
    pool(
      fieldList.map((field) => async (): Promise<FieldState> => {
        const ofField = sets.filter((s) => s.field === field.id);
        const mySet = ofField.find((s) => s.kind === "annotator" && s.annotator === context.me.id) ?? null;
        const prediction = newestPrediction(ofField);
        const truthSet = ofField.find((s) => s.kind === "consensus" || s.kind === "imported");
        const [mine, predicted, truth] = await Promise.all([
          mySet ? annotationSets.cells(mySet.id) : null,
          prediction ? annotationSets.cells(prediction.id) : null,
          !annotating && truthSet ? annotationSets.cells(truthSet.id) : null,
        ]);
        const editor = annotating
          ? new SetEditor({
              setId: mySet?.id ?? null,
              version: mine?.version ?? mySet?.version ?? 1,
              cells: mine?.cells ?? [],
              writer,
              async ensureSet() {
                const set = await ensureMySet(field.id, context.me);
                const existing = set.cell_count ? await annotationSets.cells(set.id) : null;
                return { id: set.id, version: existing?.version ?? set.version, cells: existing?.cells };
              },
            })
          : null;
        return { field, mySet, editor, suggestions: predicted?.cells ?? [], truth: truth?.cells ?? [] };
      }),
      4,
      report,
    ),
  );
  const stateByField = new Map(states.map((s) => [s.field.id, s]));
  // Submitted fields, and (with double review) fields assigned to someone else, are shown but not changed.
  const locked = (state: FieldState): boolean =>
    state.mySet !== null ? state.mySet.status !== "draft" : assigned !== null && !assigned.has(state.field.id);

  let items: GalleryItem[] = [];
  let groups: GalleryGroup[] = [];
  let focus: string | null = null;
  let anchor: string | null = null;
  const selection = new Set<string>();

  const title =
    scope === "case"
      ? `Case ${fieldList[0]?.case_code ?? caseId}`
      : `Smear ${scopeId} (case ${fieldList[0]?.case_code ?? caseId})`;
  const main = h("div", { class: "gallery-main", "aria-label": "cell crops" });
  const side = h("aside", { class: "gallery-side" });
  root.replaceChildren(h("div", { class: "gallery" }, main, side));
  root.classList.add("full");

  function rebuild(): void {
    items = states.flatMap((state) =>
      fieldItems(
        {
          fieldId: state.field.id,
          mine: state.editor?.view ?? null,
          suggestions: state.suggestions,
          truth: state.truth,
        },
        annotating,
      ),
    );
    groups = groupItems(items, taxonomy);
    const keys = new Set(items.map((item) => item.key));
    for (const key of [...selection]) if (!keys.has(key)) selection.delete(key);
    if (focus && !keys.has(focus)) focus = null;
    render();
  }

  function groupName(id: GroupId): string {
    if (id === "unclassified") return "Unclassified";
    if (id === "uncountable") return "Uncountable";
    const cls = taxonomy.get(id);
    return cls ? cls.name : String(id);
  }

  function cropButton(item: GalleryItem): HTMLElement {
    const field = fieldsById.get(item.fieldId) as Field;
    const view = cropView(item.box, field.width, field.height, CROP, MARGIN);
    const state = stateByField.get(item.fieldId) as FieldState;
    const button = h(
      "button",
      {
        class: `crop ${item.origin}${item.countable ? "" : " uncountable"}`,
        dataset: { key: item.key },
        draggable: "true",
        title: `${taxonomy.name(item.cell_class)}${item.countable ? "" : " (uncountable)"} · field #${item.fieldId}${item.confidence !== null ? ` · confidence ${percent(item.confidence)}` : ""}${item.origin === "suggestion" ? " · model suggestion" : ""}`,
        "aria-label": `${taxonomy.name(item.cell_class)} cell of field ${item.fieldId}`,
        tabindex: "-1",
        style: {
          backgroundImage: `url("${field.image_url}")`,
          backgroundSize: `${view.backgroundWidth}px ${view.backgroundHeight}px`,
          backgroundPosition: `${view.offsetX}px ${view.offsetY}px`,
        },
      },
      item.confidence !== null ? h("span", { class: "conf" }, percent(item.confidence)) : null,
      item.origin === "suggestion"
        ? h("span", { class: "flag" }, "AI")
        : locked(state)
          ? h("span", { class: "flag" }, state.mySet ? "submitted" : "not assigned")
          : null,
    );
    return button;
  }

  function render(): void {
    clear(
      main,
      h("h1", {}, `Cell gallery · ${title}`),
      h(
        "p",
        { class: "muted small" },
        `${items.length} cells from ${fieldList.length} fields · least confident first · press `,
        h("kbd", {}, "?"),
        " for keys",
      ),
      groups.length
        ? null
        : h("p", { class: "empty" }, "No cells yet: annotate a field or wait for the model's pre-labels."),
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
              groupName(group.id),
              typeof group.id === "number" ? h("kbd", {}, taxonomy.get(group.id)?.shortcut ?? "") : null,
              h("span", { class: "muted" }, `${group.items.length}`),
            ),
            h("div", { class: "crops" }, group.items.map(cropButton)),
          ),
        ),
      ),
    );
    renderSide();
    paintSelection();
  }

  function renderSide(): void {
    const counts = differential(items, taxonomy.classes);
    const rows = taxonomy
      .groups()
      .flatMap((group) => [
        h(
          "tr",
          { class: "lineage-row" },
          h("td", {}, group.lineage),
          h("td", { class: "num" }, counts.byLineage.get(group.lineage) ?? 0),
          h("td", { class: "num" }, percent(share(counts.byLineage.get(group.lineage) ?? 0, counts.total), 1)),
        ),
        ...group.classes
          .filter((cls) => counts.byClass.get(cls.id))
          .map((cls) =>
            h(
              "tr",
              { dataset: { class: String(cls.id) } },
              h("td", {}, cls.name),
              h("td", { class: "num" }, counts.byClass.get(cls.id) ?? 0),
              h("td", { class: "num" }, percent(share(counts.byClass.get(cls.id) ?? 0, counts.total), 1)),
            ),
          ),
      ]);
    const saving = states.filter((s) => s.editor && s.editor.state !== "saved");
    clear(
      side,
      h("h2", {}, "Differential (live)"),
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
      h(
        "div",
        { class: `save-state ${saving.length ? "saving" : "saved"}`, role: "status" },
        saving.length
          ? saving
              .map(
                (s) => `field #${s.field.id}: ${s.editor?.state}${s.editor?.message ? ` (${s.editor.message})` : ""}`,
              )
              .join("; ")
          : "All changes saved",
      ),
      h("h2", {}, "Reclassify"),
      h(
        "p",
        { class: "muted small" },
        "Select crops (click, Ctrl+click, Shift+click or Space) and press a class key, or drag them onto a class.",
      ),
      h(
        "div",
        { class: "palette palette-drop" },
        taxonomy.groups().map((group) =>
          h(
            "div",
            { class: "lineage", style: { borderLeftColor: LINEAGE_COLOURS[group.lineage] } },
            h("div", { class: "lineage-name" }, group.lineage),
            group.classes.map((cls) =>
              h(
                "button",
                { class: "class-button", dataset: { class: String(cls.id) }, onclick: () => reclassify(cls.id) },
                h("kbd", {}, cls.shortcut),
                h("span", { class: "name" }, cls.name),
              ),
            ),
          ),
        ),
      ),
      h("button", { onclick: () => toggleCountable() }, "Uncountable ", h("kbd", {}, "c")),
    );
  }

  function paintSelection(): void {
    for (const button of main.querySelectorAll<HTMLElement>(".crop")) {
      const key = button.dataset.key ?? "";
      button.classList.toggle("selected", selection.has(key));
      button.classList.toggle("focused", key === focus);
      button.setAttribute("aria-pressed", String(selection.has(key)));
    }
    if (focus)
      main.querySelector<HTMLElement>(`.crop[data-key="${CSS.escape(focus)}"]`)?.scrollIntoView({ block: "nearest" });
  }

  function targets(): GalleryItem[] {
    const keys = selection.size ? selection : focus ? new Set([focus]) : new Set<string>();
    return items.filter((item) => keys.has(item.key));
  }

  /** Apply a change to each chosen item: my cells are updated, suggestions become my cells with the change. */
  function change(apply: { cell_class?: number | null; countable?: boolean }): void {
    const chosen = targets();
    if (!chosen.length) {
      showInfo("Select one or more crops first (arrows move, Space selects).");
      return;
    }
    if (!annotating) {
      showInfo("Only annotators change classes; this gallery is read-only for you.");
      return;
    }
    const renamed = new Map<string, string>();
    let skipped = 0;
    for (const item of chosen) {
      const state = stateByField.get(item.fieldId) as FieldState;
      const editor = state.editor;
      if (!editor || locked(state)) {
        skipped += 1;
        continue;
      }
      if (item.origin === "mine") {
        editor.update(item.cellKey, apply);
      } else if (item.suggestion) {
        const s = item.suggestion;
        const key = editor.create({
          x: s.x,
          y: s.y,
          width: s.width,
          height: s.height,
          countable: s.countable,
          cell_class: s.cell_class,
          source_cell: s.id,
          ...apply,
        });
        renamed.set(item.key, `${item.fieldId}:${key}`);
      }
    }
    for (const [from, to] of renamed) {
      if (selection.delete(from)) selection.add(to);
      if (focus === from) focus = to;
    }
    if (skipped) showInfo(`${skipped} cell(s) of submitted or unassigned fields were left as they are (read-only).`);
    rebuild();
  }

  function reclassify(classId: number): void {
    change({ cell_class: classId, countable: true });
  }

  function toggleCountable(): void {
    const chosen = targets();
    change({ countable: chosen.length > 0 && chosen.every((item) => !item.countable) });
  }

  function setFocus(key: string | null, extend = false): void {
    if (!key) return;
    if (extend && anchor) {
      selection.clear();
      for (const k of range(groups, anchor, key)) selection.add(k);
    } else if (!extend) {
      anchor = key;
    }
    focus = key;
    paintSelection();
  }

  /** Crops per row in the focused cell's group (groups flow side by side, each as wide as it needs). */
  function columns(): number {
    const focused = focus ? main.querySelector(`.crop[data-key="${CSS.escape(focus)}"]`) : null;
    const crops = focused?.parentElement ?? main.querySelector(".crops");
    return Math.max(1, Math.floor(((crops?.clientWidth ?? CROP) + 6) / (CROP + 6)));
  }

  const move =
    (direction: Direction, extend = false) =>
    () => {
      if (extend && !anchor) anchor = focus;
      setFocus(moveFocus(groups, focus, direction, columns()), extend);
    };

  // Mouse: click selects, Ctrl/Cmd+click toggles, Shift+click selects a range, double click opens the field.
  main.addEventListener("click", (event) => {
    const button = (event.target as Element).closest<HTMLElement>(".crop");
    if (!button) return;
    const key = button.dataset.key ?? "";
    if (event.ctrlKey || event.metaKey) {
      if (!selection.delete(key)) selection.add(key);
      anchor = key;
    } else if (event.shiftKey && anchor) {
      selection.clear();
      for (const k of range(groups, anchor, key)) selection.add(k);
    } else {
      selection.clear();
      selection.add(key);
      anchor = key;
    }
    focus = key;
    paintSelection();
  });
  main.addEventListener("dblclick", (event) => {
    const key = (event.target as Element).closest<HTMLElement>(".crop")?.dataset.key;
    if (key) navigate(`/fields/${key.split(":")[0]}`);
  });

  // Drag and drop: crops onto a class group or a palette entry.
  root.addEventListener("dragstart", (event) => {
    const key = (event.target as Element).closest<HTMLElement>(".crop")?.dataset.key;
    if (!key) return;
    if (!selection.has(key)) {
      selection.clear();
      selection.add(key);
    }
    focus = key;
    event.dataTransfer?.setData("text/plain", key);
    paintSelection();
  });
  const dropTarget = (event: DragEvent): HTMLElement | null =>
    (event.target as Element).closest<HTMLElement>("[data-group], .class-button[data-class]");
  root.addEventListener("dragover", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    for (const t of root.querySelectorAll(".drop-target")) if (t !== target) t.classList.remove("drop-target");
    target.classList.add("drop-target");
  });
  root.addEventListener("dragleave", (event) => dropTarget(event)?.classList.remove("drop-target"));
  root.addEventListener("drop", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    target.classList.remove("drop-target");
    const group = target.dataset.group ?? target.dataset.class ?? "";
    if (group === "uncountable") change({ countable: false });
    else if (group === "unclassified") change({ cell_class: null, countable: true });
    else reclassify(Number(group));
  });

  const unbind = bindKeys("gallery", taxonomy, {
    classify: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) reclassify(cls.id);
    },
    focusLeft: move("left"),
    focusRight: move("right"),
    focusUp: move("up"),
    focusDown: move("down"),
    extendLeft: move("left", true),
    extendRight: move("right", true),
    toggleSelect: () => {
      if (!focus) return setFocus(moveFocus(groups, null, "right", columns()));
      if (!selection.delete(focus)) selection.add(focus);
      anchor = focus;
      paintSelection();
    },
    selectGroup: () => {
      const group = groups.find((g) => g.items.some((item) => item.key === focus)) ?? groups[0];
      if (!group) return;
      selection.clear();
      for (const item of group.items) selection.add(item.key);
      paintSelection();
    },
    toggleCountable,
    nextGroup: () => setFocus(jumpGroup(groups, focus, 1)),
    previousGroup: () => setFocus(jumpGroup(groups, focus, -1)),
    open: () => {
      if (focus) navigate(`/fields/${focus.split(":")[0]}`);
    },
    undo: () => {
      // Undo goes to the field of the focused cell (each field keeps its own history).
      const state = focus ? stateByField.get(Number(focus.split(":")[0])) : undefined;
      if (!state?.editor?.undo()) showInfo("Nothing to undo for the focused cell's field.");
    },
    escape: () => {
      selection.clear();
      paintSelection();
    },
  });

  const lastMessages = new Map<number, string>();
  const stops = states.map((state) =>
    state.editor?.onChange(() => {
      const message = state.editor?.message ?? "";
      if (message && message !== lastMessages.get(state.field.id) && state.editor?.state !== "offline")
        showError(new Error(`Field #${state.field.id}: ${message}`));
      lastMessages.set(state.field.id, message);
      if (state.editor?.conflict) {
        // The gallery shows the server's version and re-applies the changes on top: both stay.
        showInfo(`Field #${state.field.id} was changed elsewhere; your changes are saved on top of that version.`);
        state.editor.keepMine();
      }
      rebuild();
    }),
  );
  rebuild();
  focus = groups[0]?.items[0]?.key ?? null;
  paintSelection();
  main.dataset.ready = "1";

  return () => {
    unbind();
    for (const stop of stops) stop?.();
    for (const state of states) state.editor?.dispose();
    root.classList.remove("full");
  };
};
