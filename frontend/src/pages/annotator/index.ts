// The field annotator: the raw field with my boxes and the model's suggestions, the class palette, continuous
// saving with the version check, and submit. Everything in the main loop has a key (see keyboard/keymap.ts).

import { annotationSets, cellWriter as writer, ensureMySet, fields, latestPrediction } from "../../api/foundation";
import { myAssignedFields } from "../../api/review";
import type { AnnotationSet, Box, Cell, Field } from "../../api/types";
import type { Page } from "../../context";
import type { CellState, LocalCell } from "../../logic/edits";
import {
  boxAround,
  clampBox,
  median,
  moveBox,
  readingOrder,
  resizeBox,
  sameBox,
  stepIndex,
  type Nudge,
} from "../../logic/geometry";
import { percent, topClasses } from "../../logic/scores";
import { SetEditor } from "../../logic/setEditor";
import type { Taxonomy } from "../../logic/taxonomy";
import { navigate } from "../../router";
import { h, words } from "../../ui/dom";
import { confirmAction, showError, showInfo, withProgress } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import { showConflict } from "./conflict";
import { renderPanel, type PanelState } from "./panel";
import { FieldViewer, type ViewItem } from "./viewer";

const SUGGESTION_COLOUR = "#f59f00";
const UNCOUNTABLE_COLOUR = "#868e96";
const STEP = 4;

interface Loaded {
  field: Field;
  mySet: AnnotationSet | null;
  myCells: Cell[];
  version: number;
  prediction: AnnotationSet | null;
  suggestions: Cell[];
  neighbours: number[];
  truthLabel: string;
  /** false when double review is on the server and this field is not assigned to me */
  assignedToMe: boolean;
}

async function load(fieldId: number, annotating: boolean, meId: number | null): Promise<Loaded> {
  const field = await fields.get(fieldId);
  const [mySets, prediction, neighbours, truthSets, assigned] = await Promise.all([
    annotating
      ? annotationSets.list({ field: fieldId, kind: "annotator", annotator: meId ?? undefined })
      : Promise.resolve([]),
    latestPrediction(fieldId),
    fields.list({ case: field.case }),
    annotating
      ? Promise.resolve([])
      : annotationSets
          .list({ field: fieldId })
          .then((sets) => sets.filter((s) => s.kind === "consensus" || s.kind === "imported")),
    annotating ? myAssignedFields() : Promise.resolve(null),
  ]);
  // Someone who does not annotate sees the field's truth set (read-only) in place of own boxes.
  const shownSet = annotating ? (mySets[0] ?? null) : (truthSets[0] ?? null);
  const [mine, predicted] = await Promise.all([
    shownSet ? annotationSets.cells(shownSet.id) : Promise.resolve({ cells: [], version: null }),
    prediction ? annotationSets.cells(prediction.id) : Promise.resolve({ cells: [], version: null }),
  ]);
  return {
    field,
    mySet: shownSet,
    myCells: mine.cells,
    version: mine.version ?? shownSet?.version ?? 1,
    prediction,
    suggestions: predicted.cells,
    neighbours: neighbours.map((f) => f.id),
    truthLabel: annotating ? "" : shownSet ? `${shownSet.kind} set` : "no reviewed truth yet",
    assignedToMe: assigned === null || assigned.has(fieldId) || shownSet !== null,
  };
}

export const annotatorPage: Page = async (root, params, context) => {
  const fieldId = Number(params.id);
  const annotating = context.has("annotator");
  root.append(h("p", { class: "muted" }, `Loading field #${fieldId}…`));
  const [taxonomy, data] = await Promise.all([context.taxonomy(), load(fieldId, annotating, context.me.id)]);
  const { field } = data;
  let readOnly = !annotating || !data.assignedToMe || (data.mySet !== null && data.mySet.status !== "draft");

  const editor = new SetEditor({
    setId: data.mySet?.id ?? null,
    version: data.version,
    cells: data.myCells,
    writer,
    async ensureSet() {
      const set = await ensureMySet(fieldId, context.me);
      // Starting a set moves a new field into annotation (annotations/services.py).
      if (field.status === "uploaded" || field.status === "prelabelled") field.status = "in_annotation";
      const existing = set.cell_count ? await annotationSets.cells(set.id) : null;
      return { id: set.id, version: existing?.version ?? set.version, cells: existing?.cells };
    },
  });

  const dismissedKey = `aicell:dismissed:${fieldId}`;
  const dismissed = new Set<number>(JSON.parse(sessionStorage.getItem(dismissedKey) ?? "[]") as number[]);
  const suggestionById = new Map(data.suggestions.map((cell) => [cell.id, cell]));
  let showSuggestions = true;
  let selected: string | null = null;
  let autoAdvance = localStorage.getItem("aicell:autoAdvance") === "1";
  let conflictOpen = false;
  let lastMessage = "";

  // --- layout ----------------------------------------------------------------------------------------------------
  const viewerElement = h("div", {
    class: "viewer",
    id: "viewer",
    tabindex: "0",
    "aria-label": `field ${fieldId} image`,
  });
  const side = h("aside", { class: "side", "aria-label": "annotation tools" });
  const hint = h("div", { class: "viewer-hint" });
  root.replaceChildren(h("div", { class: "annotator" }, h("div", { class: "viewer-wrap" }, viewerElement, hint), side));
  root.classList.add("full");

  const viewer = new FieldViewer(viewerElement, field.image_url, {
    created(key, box) {
      if (readOnly || editor.conflict) {
        viewer.setItems(items());
        showInfo(readOnly ? "This field is read-only." : "Resolve the conflict first.");
        return;
      }
      selected = key;
      editor.createWithKey(key, {
        ...clampBox(box, field.width, field.height),
        countable: true,
        cell_class: null,
        source_cell: null,
      });
    },
    moved(key, box) {
      const cell = editor.view.get(key);
      const clamped = clampBox(box, field.width, field.height);
      if (cell && !sameBox(cell, clamped)) editor.update(key, clamped);
      if (!sameBox(box, clamped)) refresh();
    },
    deleted(key) {
      editor.remove(key);
    },
    selected(key) {
      selected = key;
      refreshPanel();
    },
  });

  // --- what is shown ---------------------------------------------------------------------------------------------
  const shownCells = (): Map<string, LocalCell> => editor.conflict?.merged ?? editor.view;

  function openSuggestions(): Cell[] {
    const taken = new Set<number>();
    for (const cell of editor.view.values()) if (cell.source_cell !== null) taken.add(cell.source_cell);
    return data.suggestions.filter((s) => !taken.has(s.id) && !dismissed.has(s.id));
  }

  function cellLabel(cell: CellState, cls: Taxonomy): string {
    const name =
      cell.cell_class === null
        ? "unclassified"
        : `${cls.get(cell.cell_class)?.shortcut ?? ""} ${cls.name(cell.cell_class)}`;
    return cell.countable ? name : `${name} · uncountable`;
  }

  function items(): ViewItem[] {
    const conflict = editor.conflict;
    const pending = new Set(conflict?.rebased.map((op) => op.key));
    const theirs = conflict
      ? new Set([...conflict.theirs.added, ...conflict.theirs.changed.map((c) => c.after)].map((c) => c.key))
      : new Set<string>();
    const mine: ViewItem[] = [...shownCells().values()].map((cell) => ({
      key: cell.key,
      kind: "mine",
      box: cell,
      label: cellLabel(cell, taxonomy),
      colour: cell.countable ? taxonomy.colour(cell.cell_class) : UNCOUNTABLE_COLOUR,
      emphasis: theirs.has(cell.key) ? "theirs" : pending.has(cell.key) ? "pending" : "none",
      editable: !readOnly && !conflict,
    }));
    if (!showSuggestions) return mine;
    const suggestions: ViewItem[] = openSuggestions().map((cell) => ({
      key: `s${cell.id}`,
      kind: "suggestion",
      box: cell,
      label: `AI ${taxonomy.name(cell.cell_class)} ${percent(cell.confidence)}${cell.countable ? "" : " · uncountable"}`,
      colour: SUGGESTION_COLOUR,
      emphasis: "none",
      editable: false,
    }));
    return [...mine, ...suggestions];
  }

  function orderedKeys(): string[] {
    return readingOrder(items().map((item) => ({ ...item.box, key: item.key }))).map((box) => box.key);
  }

  const suggestionOf = (key: string | null): Cell | undefined =>
    key?.startsWith("s") ? suggestionById.get(Number(key.slice(1))) : undefined;

  function panelState(): PanelState {
    const cell = selected ? shownCells().get(selected) : undefined;
    const suggestion = suggestionOf(selected);
    const position = data.neighbours.indexOf(fieldId);
    return {
      field,
      taxonomy,
      readOnly,
      readOnlyReason: !annotating
        ? `read-only: you are not an annotator (showing the ${data.truthLabel})`
        : !data.assignedToMe
          ? "read-only: this field is not assigned to you"
          : readOnly
            ? "submitted: read-only"
            : "",
      cells: [...shownCells().values()],
      selectedCell: cell ?? null,
      selectedSuggestion: suggestion ? { cell: suggestion, choices: topClasses(suggestion, 3) } : null,
      openSuggestions: openSuggestions().length,
      modelVersion: data.prediction?.model_version ?? null,
      showSuggestions,
      saveState: editor.state,
      pending: editor.pendingCount,
      version: editor.version,
      message: editor.message,
      drawing: viewer.isDrawing,
      autoAdvance,
      canUndo: editor.canUndo(),
      position: position >= 0 ? `${position + 1} of ${data.neighbours.length} in case ${field.case_code}` : "",
      previousField: data.neighbours[position - 1] ?? null,
      nextField: data.neighbours[position + 1] ?? null,
    };
  }

  function refreshPanel(): void {
    renderPanel(side, panelState(), {
      classify,
      accept: () => accept(),
      acceptAll,
      toggleCountable,
      remove,
      toggleDrawing,
      newBox,
      undo,
      submit: () => void submit(),
      toggleSuggestions,
      setAutoAdvance(on) {
        autoAdvance = on;
        localStorage.setItem("aicell:autoAdvance", on ? "1" : "0");
      },
      retry: () => editor.retryNow(),
    });
    hint.textContent = viewer.isDrawing ? "Drawing: drag on the field to draw a box · b or Esc to stop" : "";
  }

  function refresh(): void {
    viewer.setItems(items());
    if (selected && !items().some((item) => item.key === selected)) selected = null;
    refreshPanel();
    if (editor.message && editor.message !== lastMessage && editor.state !== "offline" && editor.state !== "conflict")
      showError(new Error(editor.message));
    lastMessage = editor.message;
    if (editor.state === "locked") readOnly = true;
    if (editor.conflict && !conflictOpen) void decideConflict();
  }

  async function decideConflict(): Promise<void> {
    conflictOpen = true;
    let choice = "";
    // Nothing is saved until the user chooses, so the question stays until answered.
    while (editor.conflict && !choice) choice = await showConflict(editor.conflict, taxonomy);
    conflictOpen = false;
    if (choice === "keep") editor.keepMine();
    else if (choice === "discard") editor.discardMine();
  }

  // --- actions ---------------------------------------------------------------------------------------------------
  function select(key: string | null): void {
    selected = key;
    viewer.select(key);
    const item = key ? items().find((i) => i.key === key) : undefined;
    if (item) viewer.reveal(item.box);
    refreshPanel();
  }

  function guard(): boolean {
    if (readOnly) showInfo(panelState().readOnlyReason || "This field is read-only.");
    else if (editor.conflict) showInfo("Resolve the conflict first.");
    else return true;
    return false;
  }

  function needSelection(): boolean {
    if (selected) return true;
    showInfo("Select a cell first: j / k go through the cells.");
    return false;
  }

  function acceptSuggestion(suggestion: Cell, changes: Partial<CellState> = {}): string {
    return editor.create({
      x: suggestion.x,
      y: suggestion.y,
      width: suggestion.width,
      height: suggestion.height,
      countable: suggestion.countable,
      cell_class: suggestion.cell_class,
      source_cell: suggestion.id,
      ...changes,
    });
  }

  function classify(classId: number): void {
    if (!guard() || !needSelection()) return;
    const suggestion = suggestionOf(selected);
    if (suggestion) select(acceptSuggestion(suggestion, { cell_class: classId }));
    else if (selected) editor.update(selected, { cell_class: classId });
    if (autoAdvance) step(1);
  }

  function accept(): void {
    if (!guard() || !needSelection()) return;
    const suggestion = suggestionOf(selected);
    if (!suggestion) {
      showInfo("The selected box is yours already; a accepts a model suggestion.");
      return;
    }
    select(acceptSuggestion(suggestion));
    if (autoAdvance) step(1);
  }

  function acceptAll(): void {
    if (!guard()) return;
    const open = openSuggestions();
    if (!open.length) {
      showInfo("There are no open suggestions on this field.");
      return;
    }
    for (const suggestion of open) acceptSuggestion(suggestion);
    showInfo(`Accepted ${open.length} suggestion${open.length === 1 ? "" : "s"}; saving.`);
  }

  function toggleCountable(): void {
    if (!guard() || !needSelection()) return;
    const suggestion = suggestionOf(selected);
    if (suggestion) select(acceptSuggestion(suggestion, { countable: !suggestion.countable }));
    else if (selected) {
      const cell = editor.view.get(selected);
      if (cell) editor.update(selected, { countable: !cell.countable });
    }
  }

  function remove(): void {
    if (!guard() || !needSelection() || !selected) return;
    const keys = orderedKeys();
    const next = keys[stepIndex(keys.indexOf(selected), 1, keys.length)];
    const suggestion = suggestionOf(selected);
    if (suggestion) {
      dismissed.add(suggestion.id);
      sessionStorage.setItem(dismissedKey, JSON.stringify([...dismissed]));
      refresh();
    } else {
      editor.remove(selected);
    }
    select(next && next !== selected ? next : null);
  }

  function newBox(): void {
    if (!guard()) return;
    const sizes = [...editor.view.values()].map((cell) => Math.max(cell.width, cell.height));
    const size = median(sizes) ?? Math.round(Math.min(field.width, field.height) * 0.12);
    const centre = viewer.centre();
    const key = editor.create({
      ...boxAround(centre.x, centre.y, size, field.width, field.height),
      countable: true,
      cell_class: null,
      source_cell: null,
    });
    select(key);
  }

  function nudge(direction: Nudge, pixels: number, resize: boolean): void {
    const cell = selected ? editor.view.get(selected) : undefined;
    if (!cell || !selected) {
      if (!resize)
        viewer.pan(
          direction === "left" ? -0.1 : direction === "right" ? 0.1 : 0,
          direction === "up" ? -0.1 : direction === "down" ? 0.1 : 0,
        );
      return;
    }
    if (!guard()) return;
    const box: Box = resize
      ? resizeBox(cell, direction, pixels, field.width, field.height)
      : moveBox(cell, direction, pixels, field.width, field.height);
    editor.update(selected, box);
  }

  function step(direction: 1 | -1): void {
    const keys = orderedKeys();
    const index = stepIndex(selected ? keys.indexOf(selected) : -1, direction, keys.length);
    if (index >= 0) select(keys[index]);
  }

  function toggleDrawing(): void {
    if (!viewer.isDrawing && !guard()) return;
    viewer.setDrawing(!viewer.isDrawing);
    refreshPanel();
  }

  function toggleSuggestions(): void {
    showSuggestions = !showSuggestions;
    refresh();
  }

  function undo(): void {
    if (!guard()) return;
    if (!editor.undo()) showInfo("Nothing to undo.");
  }

  function goField(id: number | null): void {
    if (id === null) showInfo("This is the last field of the case in this direction.");
    else navigate(`/fields/${id}`);
  }

  async function submit(): Promise<void> {
    if (!guard()) return;
    const unclassified = [...editor.view.values()].filter((cell) => cell.countable && cell.cell_class === null);
    if (unclassified.length) {
      showError(
        new Error(
          `${unclassified.length} countable cell(s) have no class yet; classify them (class keys) or mark them uncountable (c).`,
        ),
      );
      select(unclassified[0].key);
      return;
    }
    const open = openSuggestions().length;
    const counted = editor.view.size;
    const text = `${counted} cell${counted === 1 ? "" : "s"}${open ? `; ${open} suggestion(s) not accepted are left out` : ""}. The set is locked afterwards; later changes go through the cross-check.`;
    if (!(await confirmAction(`Submit field #${fieldId}?`, text, "Submit"))) return;
    try {
      await withProgress("Submitting", async () => {
        await editor.flush();
        if (editor.setId === null) {
          const set = await ensureMySet(fieldId, context.me);
          editor.setId = set.id;
          editor.version = set.version;
        }
        await annotationSets.submit(editor.setId, editor.version);
      });
    } catch (error) {
      showError(error, "Submitting");
      return;
    }
    showInfo(`Field #${fieldId} submitted.`);
    const next = panelState().nextField;
    navigate(next !== null ? `/fields/${next}` : "/");
  }

  const unbindKeys = bindKeys("annotator", taxonomy, {
    classify: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) classify(cls.id);
    },
    nextCell: () => step(1),
    previousCell: () => step(-1),
    nextField: () => goField(panelState().nextField),
    previousField: () => goField(panelState().previousField),
    accept,
    acceptAll,
    toggleCountable,
    delete: remove,
    newBox,
    drawMode: toggleDrawing,
    moveLeft: () => nudge("left", STEP, false),
    moveRight: () => nudge("right", STEP, false),
    moveUp: () => nudge("up", STEP, false),
    moveDown: () => nudge("down", STEP, false),
    fineLeft: () => nudge("left", 1, false),
    fineRight: () => nudge("right", 1, false),
    fineUp: () => nudge("up", 1, false),
    fineDown: () => nudge("down", 1, false),
    narrower: () => nudge("left", STEP, true),
    wider: () => nudge("right", STEP, true),
    shorter: () => nudge("up", STEP, true),
    taller: () => nudge("down", STEP, true),
    zoomCell: () => {
      const item = items().find((i) => i.key === selected);
      if (item) viewer.zoomTo(item.box);
    },
    zoomField: () => viewer.home(),
    zoomIn: () => viewer.zoomBy(1.4),
    zoomOut: () => viewer.zoomBy(1 / 1.4),
    toggleSuggestions,
    undo,
    saveNow: () => editor.retryNow(),
    submit: () => void submit(),
    escape: () => {
      if (viewer.isDrawing) toggleDrawing();
      else select(null);
    },
  });

  const beforeUnload = (event: BeforeUnloadEvent): void => {
    if (editor.pendingCount > 0) event.preventDefault();
  };
  window.addEventListener("beforeunload", beforeUnload);
  const stopListening = editor.onChange(refresh);

  try {
    await viewer.ready;
  } catch (error) {
    showError(error);
  }
  refresh();
  viewerElement.dataset.ready = "1";
  if (readOnly && annotating) showInfo(`Field #${fieldId} is ${words(data.mySet?.status ?? "submitted")}: read-only.`);

  return () => {
    unbindKeys();
    stopListening();
    window.removeEventListener("beforeunload", beforeUnload);
    // Queued writes still go out after leaving the page; only the view stops following them.
    editor.dispose();
    viewer.destroy();
    root.classList.remove("full");
  };
};
