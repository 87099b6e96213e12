// The field annotator's controller: it owns my set's editor (continuous saving), the viewer and the page state,
// turns each user action (key, button, mouse) into editor changes, and re-renders the viewer and the side panel.
// What to show and the checks are pure functions in state.ts; the panel and the viewer only draw.

import { annotationSets } from "../../api/foundation";
import type { Box, Cell, Me } from "../../api/shapes";
import type { CellChanges } from "../../logic/edits";
import { boxAround, clampBox, median, moveBox, resizeBox, sameBox, type Nudge } from "../../logic/geometry";
import { topClasses } from "../../logic/scores";
import type { SetEditor } from "../../logic/setEditor";
import type { Taxonomy } from "../../logic/taxonomy";
import { navigate } from "../../router";
import { confirmAction, showError, showInfo, withProgress } from "../../ui/feedback";
import { mySetEditor } from "../shared/editing";
import { showConflict } from "./conflict";
import type { FieldData } from "./data";
import { renderPanel, type PanelActions, type PanelState } from "./panel";
import {
  neighbours,
  openSuggestions,
  orderedKeys,
  readOnlyReason,
  selectedAfterRemoval,
  statusOnceStarted,
  stepped,
  submitCheck,
  suggestionOf,
  viewItems,
  type AnnotatorState,
  type Neighbours,
} from "./state";
import { FieldViewer, type ViewItem } from "./viewer";

/** pixels an arrow key moves or resizes a box by (Alt: 1) */
const STEP = 4;
const AUTO_ADVANCE = "aicell:autoAdvance";

export interface AnnotatorElements {
  viewer: HTMLElement;
  side: HTMLElement;
  hint: HTMLElement;
}

export class AnnotatorController {
  readonly editor: SetEditor;
  readonly viewer: FieldViewer;
  readonly state: AnnotatorState;
  readonly neighbours: Neighbours;
  private readonly suggestionById: Map<number, Cell>;
  private readonly dismissedKey: string;
  private conflictOpen = false;
  private lastMessage = "";

  constructor(
    private readonly data: FieldData,
    private readonly taxonomy: Taxonomy,
    me: Me,
    private readonly annotating: boolean,
    private readonly elements: AnnotatorElements,
  ) {
    const { field } = data;
    this.dismissedKey = `aicell:dismissed:${field.id}`;
    const set = data.shown.set;
    this.state = {
      fieldStatus: field.status,
      readOnly: !annotating || !data.assignedToMe || (set !== null && set.status !== "draft"),
      selected: null,
      showSuggestions: true,
      autoAdvance: localStorage.getItem(AUTO_ADVANCE) === "1",
      dismissed: new Set(JSON.parse(sessionStorage.getItem(this.dismissedKey) ?? "[]") as number[]),
    };
    this.neighbours = neighbours(data.neighbours, field);
    this.suggestionById = new Map(data.suggestions.map((cell) => [cell.id, cell]));
    this.editor = mySetEditor(field.id, me, data.shown, () => {
      this.state.fieldStatus = statusOnceStarted(this.state.fieldStatus);
    });
    this.viewer = new FieldViewer(elements.viewer, field.image_url, {
      created: (key, box) => this.drawn(key, box),
      moved: (key, box) => this.moved(key, box),
      deleted: (key) => this.editor.remove(key),
      selected: (key) => {
        this.state.selected = key;
        this.refreshPanel();
      },
    });
  }

  // --- what is shown ---------------------------------------------------------------------------------------------

  private get shownCells() {
    return this.editor.conflict?.merged ?? this.editor.view;
  }

  private openSuggestions(): Cell[] {
    return openSuggestions(this.data.suggestions, this.editor.view.values(), this.state.dismissed);
  }

  items(): ViewItem[] {
    const suggestions = this.state.showSuggestions ? this.openSuggestions() : [];
    return viewItems(
      { cells: this.shownCells, conflict: this.editor.conflict, suggestions, readOnly: this.state.readOnly },
      this.taxonomy,
    );
  }

  private selectedSuggestion(): Cell | undefined {
    return suggestionOf(this.state.selected, this.suggestionById);
  }

  readOnlyReason(): string {
    const { annotating } = this;
    const { assignedToMe, truthLabel } = this.data;
    return readOnlyReason({ annotating, assignedToMe, truthLabel, readOnly: this.state.readOnly });
  }

  private panelState(): PanelState {
    const { selected } = this.state;
    const suggestion = this.selectedSuggestion();
    return {
      field: this.data.field,
      fieldStatus: this.state.fieldStatus,
      taxonomy: this.taxonomy,
      readOnly: this.state.readOnly,
      readOnlyReason: this.readOnlyReason(),
      cells: [...this.shownCells.values()],
      selectedCell: (selected && this.shownCells.get(selected)) || null,
      selectedSuggestion: suggestion ? { cell: suggestion, choices: topClasses(suggestion, 3) } : null,
      openSuggestions: this.openSuggestions().length,
      modelVersion: this.data.prediction?.model_version ?? null,
      showSuggestions: this.state.showSuggestions,
      saveState: this.editor.state,
      pending: this.editor.pendingCount,
      version: this.editor.version,
      message: this.editor.message,
      drawing: this.viewer.isDrawing,
      autoAdvance: this.state.autoAdvance,
      canUndo: this.editor.canUndo(),
      neighbours: this.neighbours,
    };
  }

  private readonly panelActions: PanelActions = {
    classify: (classId) => this.classify(classId),
    accept: () => this.accept(),
    acceptAll: () => this.acceptAll(),
    toggleCountable: () => this.toggleCountable(),
    remove: () => this.remove(),
    toggleDrawing: () => this.toggleDrawing(),
    newBox: () => this.newBox(),
    undo: () => this.undo(),
    submit: () => void this.submit(),
    toggleSuggestions: () => this.toggleSuggestions(),
    setAutoAdvance: (on) => {
      this.state.autoAdvance = on;
      localStorage.setItem(AUTO_ADVANCE, on ? "1" : "0");
    },
    retry: () => this.editor.retryNow(),
  };

  refreshPanel(): void {
    renderPanel(this.elements.side, this.panelState(), this.panelActions);
    this.elements.hint.textContent = this.viewer.isDrawing
      ? "Drawing: drag on the field to draw a box · b or Esc to stop"
      : "";
  }

  /** Re-render after any change (the editor calls this on each of its changes). */
  refresh(): void {
    const items = this.items();
    this.viewer.setItems(items);
    if (this.state.selected && !items.some((item) => item.key === this.state.selected)) this.state.selected = null;
    this.refreshPanel();
    const { editor } = this;
    if (
      editor.message &&
      editor.message !== this.lastMessage &&
      editor.state !== "offline" &&
      editor.state !== "conflict"
    )
      showError(new Error(editor.message));
    this.lastMessage = editor.message;
    if (editor.state === "locked") this.state.readOnly = true;
    if (editor.conflict && !this.conflictOpen) void this.decideConflict();
  }

  private async decideConflict(): Promise<void> {
    this.conflictOpen = true;
    let choice = "";
    // Nothing is saved until the user chooses, so the question stays until answered.
    while (this.editor.conflict && !choice) choice = await showConflict(this.editor.conflict, this.taxonomy);
    this.conflictOpen = false;
    if (choice === "keep") this.editor.keepMine();
    else if (choice === "discard") this.editor.discardMine();
  }

  // --- the viewer's mouse edits ------------------------------------------------------------------------------------

  private drawn(key: string, box: Box): void {
    if (this.state.readOnly || this.editor.conflict) {
      this.viewer.setItems(this.items());
      showInfo(this.state.readOnly ? "This field is read-only." : "Resolve the conflict first.");
      return;
    }
    const { field } = this.data;
    this.state.selected = key;
    this.editor.createWithKey(key, {
      ...clampBox(box, field.width, field.height),
      countable: true,
      cell_class: null,
      source_cell: null,
    });
  }

  private moved(key: string, box: Box): void {
    const { field } = this.data;
    const cell = this.editor.view.get(key);
    const clamped = clampBox(box, field.width, field.height);
    if (cell && !sameBox(cell, clamped)) this.editor.update(key, clamped);
    if (!sameBox(box, clamped)) this.refresh();
  }

  // --- actions -----------------------------------------------------------------------------------------------------

  select(key: string | null): void {
    this.state.selected = key;
    this.viewer.select(key);
    const item = key ? this.items().find((i) => i.key === key) : undefined;
    if (item) this.viewer.reveal(item.box);
    this.refreshPanel();
  }

  /** Whether the field may be changed now; says why not. */
  private writable(): boolean {
    if (this.state.readOnly) showInfo(this.readOnlyReason() || "This field is read-only.");
    else if (this.editor.conflict) showInfo("Resolve the conflict first.");
    else return true;
    return false;
  }

  private hasSelection(): boolean {
    if (this.state.selected) return true;
    showInfo("Select a cell first: j / k go through the cells.");
    return false;
  }

  /** Change the selected item: my cell is updated; a suggestion is accepted with the change. */
  private changeSelected(changes: (cell: { countable: boolean }) => CellChanges): void {
    const { selected } = this.state;
    const suggestion = this.selectedSuggestion();
    if (suggestion) this.select(this.editor.accept(suggestion, changes(suggestion)));
    else if (selected) {
      const cell = this.editor.view.get(selected);
      if (cell) this.editor.update(selected, changes(cell));
    }
  }

  classify(classId: number): void {
    if (!this.writable() || !this.hasSelection()) return;
    this.changeSelected(() => ({ cell_class: classId }));
    if (this.state.autoAdvance) this.step(1);
  }

  accept(): void {
    if (!this.writable() || !this.hasSelection()) return;
    const suggestion = this.selectedSuggestion();
    if (!suggestion) {
      showInfo("The selected box is yours already; a accepts a model suggestion.");
      return;
    }
    this.select(this.editor.accept(suggestion));
    if (this.state.autoAdvance) this.step(1);
  }

  acceptAll(): void {
    if (!this.writable()) return;
    const open = this.openSuggestions();
    if (!open.length) {
      showInfo("There are no open suggestions on this field.");
      return;
    }
    for (const suggestion of open) this.editor.accept(suggestion);
    showInfo(`Accepted ${open.length} suggestion${open.length === 1 ? "" : "s"}; saving.`);
  }

  toggleCountable(): void {
    if (!this.writable() || !this.hasSelection()) return;
    this.changeSelected((cell) => ({ countable: !cell.countable }));
  }

  remove(): void {
    const { selected } = this.state;
    if (!this.writable() || !this.hasSelection() || !selected) return;
    const next = selectedAfterRemoval(orderedKeys(this.items()), selected);
    const suggestion = this.selectedSuggestion();
    if (suggestion) {
      this.state.dismissed = new Set([...this.state.dismissed, suggestion.id]);
      sessionStorage.setItem(this.dismissedKey, JSON.stringify([...this.state.dismissed]));
      this.refresh();
    } else {
      this.editor.remove(selected);
    }
    this.select(next);
  }

  newBox(): void {
    if (!this.writable()) return;
    const { field } = this.data;
    const sizes = [...this.editor.view.values()].map((cell) => Math.max(cell.width, cell.height));
    const size = median(sizes) ?? Math.round(Math.min(field.width, field.height) * 0.12);
    const centre = this.viewer.centre();
    this.select(
      this.editor.create({
        ...boxAround(centre.x, centre.y, size, field.width, field.height),
        countable: true,
        cell_class: null,
        source_cell: null,
      }),
    );
  }

  /** Arrow keys: move (or with `resize`, resize) the selected box; without a selection, pan the view. */
  nudge(direction: Nudge, fine: boolean, resize = false): void {
    const { selected } = this.state;
    const cell = selected ? this.editor.view.get(selected) : undefined;
    if (!cell || !selected) {
      if (!resize)
        this.viewer.pan(
          direction === "left" ? -0.1 : direction === "right" ? 0.1 : 0,
          direction === "up" ? -0.1 : direction === "down" ? 0.1 : 0,
        );
      return;
    }
    if (!this.writable()) return;
    const { field } = this.data;
    const pixels = fine ? 1 : STEP;
    const move = resize ? resizeBox : moveBox;
    this.editor.update(selected, move(cell, direction, pixels, field.width, field.height));
  }

  step(direction: 1 | -1): void {
    const next = stepped(orderedKeys(this.items()), this.state.selected, direction);
    if (next !== null) this.select(next);
  }

  zoomToSelected(): void {
    const item = this.items().find((i) => i.key === this.state.selected);
    if (item) this.viewer.zoomTo(item.box);
  }

  toggleDrawing(): void {
    if (!this.viewer.isDrawing && !this.writable()) return;
    this.viewer.setDrawing(!this.viewer.isDrawing);
    this.refreshPanel();
  }

  escape(): void {
    if (this.viewer.isDrawing) this.toggleDrawing();
    else this.select(null);
  }

  toggleSuggestions(): void {
    this.state.showSuggestions = !this.state.showSuggestions;
    this.refresh();
  }

  undo(): void {
    if (!this.writable()) return;
    if (!this.editor.undo()) showInfo("Nothing to undo.");
  }

  goField(id: number | null): void {
    if (id === null) showInfo("This is the last field of the case in this direction.");
    else navigate(`/fields/${id}`);
  }

  async submit(): Promise<void> {
    if (!this.writable()) return;
    const fieldId = this.data.field.id;
    const check = submitCheck(this.editor.view, this.openSuggestions().length, fieldId);
    if (!check.ready) {
      showError(new Error(check.problem));
      this.select(check.first);
      return;
    }
    if (!(await confirmAction(check.question, check.text, "Submit"))) return;
    try {
      await withProgress("Submitting", async () => {
        await this.editor.flush();
        await annotationSets.submit(await this.editor.ensureCreated(), this.editor.version);
      });
    } catch (error) {
      showError(error, "Submitting");
      return;
    }
    showInfo(`Field #${fieldId} submitted.`);
    navigate(this.neighbours.next !== null ? `/fields/${this.neighbours.next}` : "/");
  }
}
