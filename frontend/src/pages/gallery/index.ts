// The cell gallery (CellaVision style): crops of every cell of a smear or case grouped by class, least confident
// first; select one or many and reclassify by key or by dragging onto a class; mark uncountable; the differential
// count on the side follows every change. One explicit source at a time, as the report counts it: "my work" (an
// annotator's own sets, editable; a model suggestion that is reclassified or confirmed is taken over with the
// server's /accept, and suggestions not taken over are not counted), "consensus" or "model: active version"
// (read-only, no palette).

import { GALLERY_SOURCES, type GallerySource } from "../../api/differential";
import type { Field } from "../../api/shapes";
import type { Page } from "../../context";
import type { CellChanges } from "../../logic/edits";
import {
  countedItems,
  fieldItems,
  groupItems,
  jumpGroup,
  type Direction,
  type GalleryGroup,
  type GalleryItem,
} from "../../logic/gallery";
import type { SetEditor } from "../../logic/setEditor";
import { navigate } from "../../router";
import { h } from "../../ui/dom";
import { showInfo, withProgress } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import { mySetEditor, saveUnattended } from "../shared/editing";
import { loadGallery, type FieldCells, type Scope } from "./data";
import {
  cleared,
  clicked,
  countableAfterToggle,
  dragStarted,
  fieldOfKey,
  focused,
  groupSelected,
  moved,
  NOTHING,
  pruned,
  renamed,
  targets,
  toggled,
  type Selection,
} from "./state";
import { columns, paintSelection, renderMain, renderSide } from "./view";

interface FieldState extends FieldCells {
  /** my set's editor; null for someone who does not annotate */
  editor: SetEditor | null;
}

export const SOURCE_LABELS: Record<GallerySource, string> = {
  mine: "my work",
  consensus: "consensus",
  model: "model: active version",
};

export const galleryPage: Page = async (root, params, context) => {
  const scope: Scope = params.scope === "case" ? "case" : "smear";
  const offered = GALLERY_SOURCES.filter(
    (s) =>
      (s !== "mine" || context.has("annotator")) && (s !== "model" || context.has("annotator", "adjudicator", "admin")),
  );
  const asked = new URLSearchParams(location.search).get("source") as GallerySource | null;
  const source: GallerySource = asked && offered.includes(asked) ? asked : offered[0];
  const annotating = source === "mine";
  root.append(h("p", { class: "muted" }, "Loading the gallery…"));
  const taxonomy = await context.taxonomy();
  const data = await withProgress("Loading cells", (report) =>
    loadGallery(scope, Number(params.id), context.me, source, report),
  );
  const states: FieldState[] = data.fields.map((cells) => ({
    ...cells,
    editor: annotating ? mySetEditor(cells.field.id, context.me, cells.mine) : null,
  }));
  const stateByField = new Map(states.map((s) => [s.field.id, s]));
  const fieldOf = (id: number): Field => (stateByField.get(id) as FieldState).field;

  /** Why my cells of a field cannot change: submitted, or (double review) assigned to someone else; "" if they can. */
  function lockedWhy(fieldId: number): string {
    const state = stateByField.get(fieldId) as FieldState;
    if (state.mine.set) return state.mine.set.status !== "draft" ? "submitted" : "";
    return data.assigned !== null && !data.assigned.has(fieldId) ? "not assigned" : "";
  }

  let items: GalleryItem[] = [];
  let groups: GalleryGroup[] = [];
  let selection: Selection = NOTHING;

  const caseCode = states[0]?.field.case_code ?? String(data.caseId);
  const title = scope === "case" ? `Case ${caseCode}` : `Smear ${data.scopeId} (case ${caseCode})`;
  const main = h("div", { class: "gallery-main", "aria-label": "cell crops" });
  const side = h("aside", { class: "gallery-side" });
  root.replaceChildren(h("div", { class: "gallery" }, main, side));
  root.classList.add("full");

  function sourcePicker(): HTMLElement {
    const picker = h(
      "select",
      {
        id: "gallery-source",
        "aria-label": "cells shown",
        onchange: (event: Event) => {
          const next = (event.target as HTMLSelectElement).value;
          navigate(`${location.pathname}?source=${encodeURIComponent(next)}`);
        },
      },
      offered.map((s) => h("option", { value: s, selected: s === source }, SOURCE_LABELS[s])),
    );
    return h("label", { class: "source-picker" }, "Cells shown: ", picker);
  }

  function select(next: Selection): void {
    selection = next;
    paintSelection(main, selection);
  }

  function rebuild(): void {
    items = states.flatMap((state) =>
      fieldItems(
        {
          fieldId: state.field.id,
          mine: state.editor?.view ?? null,
          suggestions: state.suggestions,
          truth: state.truth,
        },
        source,
      ),
    );
    groups = groupItems(items, taxonomy);
    selection = pruned(selection, new Set(items.map((item) => item.key)));
    renderMain(main, {
      title,
      fieldCount: states.length,
      items,
      groups,
      taxonomy,
      fieldOf,
      lockedWhy,
      editable: annotating,
      sourcePicker: sourcePicker(),
      onMoreCrops: () => paintSelection(main, selection, false),
    });
    const unsaved = states
      .filter((s) => s.editor && s.editor.state !== "saved")
      .map((s) => `field #${s.field.id}: ${s.editor?.state}${s.editor?.message ? ` (${s.editor.message})` : ""}`);
    renderSide(
      side,
      { items: countedItems(items, source), shown: items.length, taxonomy, unsaved, source, editable: annotating },
      { reclassify, toggleCountable },
    );
    paintSelection(main, selection);
  }

  /** Apply a change to each chosen crop: my cells are updated, suggestions are accepted with the change. */
  function change(changes: CellChanges): void {
    const chosen = targets(selection, items);
    if (!chosen.length) {
      showInfo("Select one or more crops first (arrows move, Space selects).");
      return;
    }
    if (!annotating) {
      showInfo(`This gallery shows the ${SOURCE_LABELS[source]} and is read-only. Choose "my work" to change classes.`);
      return;
    }
    const renames = new Map<string, string>();
    let skipped = 0;
    for (const item of chosen) {
      const editor = stateByField.get(item.fieldId)?.editor;
      if (!editor || lockedWhy(item.fieldId)) {
        skipped += 1;
      } else if (item.origin === "mine") {
        editor.update(item.cellKey, changes);
      } else if (item.suggestion) {
        renames.set(item.key, `${item.fieldId}:${editor.accept(item.suggestion, changes)}`);
      }
    }
    selection = renamed(selection, renames);
    if (skipped) showInfo(`${skipped} cell(s) of submitted or unassigned fields were left as they are (read-only).`);
    rebuild();
  }

  function reclassify(classId: number): void {
    change({ cell_class: classId, countable: true });
  }

  function toggleCountable(): void {
    change({ countable: countableAfterToggle(targets(selection, items)) });
  }

  const move =
    (direction: Direction, extend = false) =>
    () =>
      select(moved(selection, direction, extend, groups, columns(main, selection.focus)));

  const openField = (key: string | null | undefined): void => {
    if (key) navigate(`/fields/${fieldOfKey(key)}`);
  };

  // Mouse: click selects, Ctrl/Cmd+click toggles, Shift+click selects a range, double click opens the field.
  main.addEventListener("click", (event) => {
    const key = (event.target as Element).closest<HTMLElement>(".crop")?.dataset.key;
    if (key)
      select(clicked(selection, key, { toggle: event.ctrlKey || event.metaKey, extend: event.shiftKey }, groups));
  });
  main.addEventListener("dblclick", (event) =>
    openField((event.target as Element).closest<HTMLElement>(".crop")?.dataset.key),
  );

  // Drag and drop: crops onto a class group or a palette entry.
  root.addEventListener("dragstart", (event) => {
    const key = (event.target as Element).closest<HTMLElement>(".crop")?.dataset.key;
    if (!key) return;
    event.dataTransfer?.setData("text/plain", key);
    select(dragStarted(selection, key));
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
    toggleSelect: () => select(toggled(selection, groups, columns(main, selection.focus))),
    selectGroup: () => select(groupSelected(selection, groups)),
    toggleCountable,
    nextGroup: () => select(focused(selection, jumpGroup(groups, selection.focus, 1), false, groups)),
    previousGroup: () => select(focused(selection, jumpGroup(groups, selection.focus, -1), false, groups)),
    open: () => openField(selection.focus),
    undo: () => {
      // Undo goes to the field of the focused cell (each field keeps its own history).
      const state = selection.focus ? stateByField.get(fieldOfKey(selection.focus)) : undefined;
      if (!state?.editor?.undo()) showInfo("Nothing to undo for the focused cell's field.");
    },
    escape: () => select(cleared(selection)),
  });

  const stops = states.map((state) => (state.editor ? saveUnattended(state.editor, state.field.id, rebuild) : null));
  rebuild();
  select({ ...selection, focus: groups[0]?.items[0]?.key ?? null });
  main.dataset.ready = "1";

  return () => {
    unbind();
    for (const stop of stops) stop?.();
    for (const state of states) state.editor?.dispose();
    root.classList.remove("full");
  };
};
