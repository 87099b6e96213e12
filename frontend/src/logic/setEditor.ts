// Continuous saving of one annotator set with the version check.
//
// Every change is applied to the view at once and queued; the queue is sent one write at a time, each naming the
// set version it was made on (If-Match). When someone else changed the set meanwhile, the server answers 409 with
// the set as it is now: the editor stops, shows both (`conflict`), and the user either re-applies the queued
// changes on top of the other one (`keepMine`) or drops them (`discardMine`). Nothing is lost without a decision.
//
// Model suggestions are taken over with `accept` (the server's /accept copies them); acceptances queued one after
// another (accept all) go out as one request.

import { ApiError, describeError } from "../api/http";
import type { AcceptedSuggestions, Cell, CellWrite, SetSnapshot, Suggestion } from "../api/shapes";
import {
  applyOps,
  changesBetween,
  diffCells,
  enqueue,
  fromSnapshot,
  inverse,
  isCreation,
  keyForId,
  rebase,
  suggestionCopy,
  type CellChanges,
  type CellDiff,
  type CellState,
  type LocalCell,
  type Op,
} from "./edits";

export interface Written<T> {
  value: T;
  version: number | null;
}

/** The writes the editor needs (the real ones are `cellWriter` in api/foundation.ts; tests pass fakes). */
export interface CellWriter {
  create(setId: number, version: number, data: CellWrite): Promise<Written<Cell>>;
  /** Copy model suggestions (prediction cell ids of the set's field) into the set: one version step. */
  accept(setId: number, version: number, suggestions: number[]): Promise<Written<Omit<AcceptedSuggestions, "version">>>;
  update(cellId: number, version: number, changes: Partial<CellWrite>): Promise<Written<Cell>>;
  delete(cellId: number, version: number): Promise<Written<null>>;
  /** The set as it is now (after a write found its cell gone). */
  snapshot(setId: number): Promise<SetSnapshot>;
}

export type SaveState = "saved" | "saving" | "offline" | "conflict" | "locked";

export interface Conflict {
  message: string;
  serverVersion: number;
  /** what the other change did, relative to what this page had confirmed */
  theirs: CellDiff;
  /** the changes of this page that are not saved */
  mine: Op[];
  /** the server's cells with this page's changes re-applied: what "keep both" will save */
  merged: Map<string, LocalCell>;
  /** this page's changes as they will be re-applied */
  rebased: Op[];
  notes: string[];
  server: Map<string, LocalCell>;
}

export interface SetRef {
  id: number;
  version: number;
  /** cells already in the set when it was found rather than created */
  cells?: Cell[];
}

export interface EditorOptions {
  setId: number | null;
  version: number;
  cells: readonly Cell[];
  writer: CellWriter;
  /** creates (or finds) the set on the first write when `setId` is null */
  ensureSet?: () => Promise<SetRef>;
  retryDelays?: readonly number[];
}

const UNDO_LIMIT = 200;

export function cellState(
  cell: Pick<Cell, "x" | "y" | "width" | "height" | "countable" | "cell_class" | "source_cell">,
): CellState {
  return {
    x: cell.x,
    y: cell.y,
    width: cell.width,
    height: cell.height,
    countable: cell.countable,
    cell_class: cell.cell_class,
    source_cell: cell.source_cell ?? null,
  };
}

export class SetEditor {
  setId: number | null;
  version: number;
  state: SaveState = "saved";
  /** the last failure in words (refused write, lost connection, locked set) */
  message = "";
  conflict: Conflict | null = null;

  private confirmed = new Map<string, LocalCell>();
  private readonly ids = new Map<string, number>();
  private readonly keys = new Map<number, string>();
  /** the operations being sent: one, or a run of acceptances sent together */
  private inFlight: Op[] = [];
  private queue: Op[] = [];
  private undoStack: Op[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly writer: CellWriter;
  private readonly ensureSet?: () => Promise<SetRef>;
  private readonly retryDelays: readonly number[];
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private counter = 0;

  constructor(options: EditorOptions) {
    this.setId = options.setId;
    this.version = options.version;
    this.writer = options.writer;
    this.ensureSet = options.ensureSet;
    this.retryDelays = options.retryDelays ?? [1000, 2000, 4000, 8000, 15000];
    this.confirmCells(options.cells);
  }

  // --- reading ---------------------------------------------------------------------------------------------------

  /** What the user sees: confirmed cells with the unsaved changes applied. */
  get view(): Map<string, LocalCell> {
    return applyOps(this.confirmed, this.pendingOps());
  }

  get pendingCount(): number {
    return this.pendingOps().length;
  }

  keyOfId(id: number): string {
    return this.keys.get(id) ?? keyForId(id);
  }

  canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // --- changing --------------------------------------------------------------------------------------------------

  create(data: CellState): string {
    const key = this.newKey();
    this.apply({ kind: "create", key, data });
    return key;
  }

  /**
   * Take a model suggestion over, optionally changed (another class, uncountable): the server copies it as
   * predicted and the changes follow as an edit of the copy. One undo step removes the copy again.
   */
  accept(
    suggestion: Pick<Suggestion, "id" | "x" | "y" | "width" | "height" | "countable" | "cell_class">,
    changes: CellChanges = {},
  ): string {
    const key = this.newKey();
    const data = suggestionCopy(suggestion);
    this.apply({ kind: "accept", key, source: suggestion.id, data });
    const edit = changesBetween(data, { ...data, ...changes });
    if (Object.keys(edit).length) this.apply({ kind: "update", key, changes: edit }, false);
    return key;
  }

  /** Create under a key the caller chose (the drawing library names new shapes itself). */
  createWithKey(key: string, data: CellState): void {
    this.apply({ kind: "create", key, data });
  }

  update(key: string, changes: CellChanges): void {
    if (!this.view.has(key) || Object.keys(changes).length === 0) return;
    this.apply({ kind: "update", key, changes });
  }

  remove(key: string): void {
    if (!this.view.has(key)) return;
    this.apply({ kind: "delete", key });
  }

  undo(): boolean {
    const op = this.undoStack.pop();
    if (!op) return false;
    this.queue = enqueue(this.queue, op);
    this.changed();
    this.pump();
    return true;
  }

  /** Send what is queued now instead of waiting for the next retry. */
  retryNow(): void {
    if (this.state === "conflict") return;
    this.clearRetry();
    this.failures = 0;
    if (this.state === "offline" || this.state === "locked") this.state = "saving";
    this.pump();
  }

  /** The set's id, creating the set first when this editor has none yet (submitting an empty field needs one). */
  async ensureCreated(): Promise<number> {
    if (this.setId === null) await this.createSet();
    return this.setId as number;
  }

  /** Resolves once everything is saved; rejects when saving stopped (conflict, locked set, refused write). */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.conflict) reject(new Error(this.conflict.message));
        else if (this.state === "locked") reject(new Error(this.message));
        else if (this.inFlight.length === 0 && this.queue.length === 0) resolve();
        else return false;
        return true;
      };
      if (check()) return;
      const stop = this.onChange(() => {
        if (check()) stop();
      });
    });
  }

  /** Conflict resolution: the other change stays, this page's changes are applied on top of it and saved. */
  keepMine(): void {
    const conflict = this.conflict;
    if (!conflict) return;
    this.adoptServer(conflict.server, conflict.serverVersion);
    this.queue = conflict.rebased;
    this.conflict = null;
    this.state = "saving";
    this.changed();
    this.pump();
  }

  /** Conflict resolution: drop this page's unsaved changes and show the set as the server has it. */
  discardMine(): void {
    const conflict = this.conflict;
    if (!conflict) return;
    this.adoptServer(conflict.server, conflict.serverVersion);
    this.queue = [];
    this.undoStack = [];
    this.conflict = null;
    this.state = "saved";
    this.changed();
  }

  /** Stop telling the page; queued writes (and their retries) still go out, so leaving a page loses nothing. */
  dispose(): void {
    this.listeners.clear();
  }

  // --- internals -------------------------------------------------------------------------------------------------

  private newKey(): string {
    return `n${Date.now().toString(36)}${(this.counter++).toString(36)}`;
  }

  private apply(op: Op, undoable = true): void {
    const undo = undoable ? inverse(this.view, op) : null;
    if (undo) {
      this.undoStack.push(undo);
      if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
    }
    this.queue = enqueue(this.queue, op);
    this.changed();
    this.pump();
  }

  private pendingOps(): Op[] {
    return [...this.inFlight, ...this.queue];
  }

  private confirmCells(cells: readonly Cell[]): void {
    for (const cell of cells) {
      const key = this.keyOfId(cell.id);
      this.remember(key, cell.id);
      this.confirmed.set(key, { key, ...cellState(cell) });
    }
  }

  private remember(key: string, id: number): void {
    this.ids.set(key, id);
    this.keys.set(id, key);
  }

  private adoptServer(server: Map<string, LocalCell>, version: number): void {
    this.confirmed = new Map(server);
    this.version = version;
  }

  private changed(): void {
    if (!this.conflict && this.state !== "offline" && this.state !== "locked") {
      this.state = this.inFlight.length || this.queue.length ? "saving" : "saved";
    }
    for (const listener of [...this.listeners]) listener();
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private pump(): void {
    if (this.inFlight.length || this.conflict || this.retryTimer !== null || this.state === "locked") return;
    const batch = nextBatch(this.queue);
    if (!batch.length) {
      this.changed();
      return;
    }
    this.queue = this.queue.slice(batch.length);
    this.inFlight = batch;
    this.changed();
    void this.send(batch);
  }

  private async send(ops: Op[]): Promise<void> {
    try {
      await this.write(ops);
      this.inFlight = [];
      this.failures = 0;
      if (this.state === "offline") {
        this.state = "saving";
        this.message = "";
      }
      this.changed();
      this.pump();
    } catch (error) {
      await this.failed(ops, error);
    }
  }

  private async write(ops: Op[]): Promise<void> {
    const setId = await this.ensureCreated();
    const [op] = ops;
    if (op.kind === "accept") {
      const accepts = ops as Array<Extract<Op, { kind: "accept" }>>;
      const { value, version } = await this.writer.accept(
        setId,
        this.version,
        accepts.map((a) => a.source),
      );
      this.version = version ?? this.version + 1;
      for (const cell of value.created) {
        const accepted = accepts.find((a) => a.source === cell.source_cell);
        if (accepted) this.confirm(accepted.key, cell);
      }
      if (value.skipped.length)
        await this.adoptCopies(
          setId,
          accepts.filter((a) => value.skipped.includes(a.source)),
        );
      return;
    }
    if (op.kind === "create") {
      const { value, version } = await this.writer.create(setId, this.version, { ...op.data });
      this.confirm(op.key, value);
      this.version = version ?? this.version + 1;
      return;
    }
    const id = this.ids.get(op.key);
    if (id === undefined) return; // the cell never reached the server and is gone: nothing to send
    if (op.kind === "update") {
      const { value, version } = await this.writer.update(id, this.version, op.changes);
      this.confirmed.set(op.key, { key: op.key, ...cellState(value) });
      this.version = version ?? this.version + 1;
    } else {
      const { version } = await this.writer.delete(id, this.version);
      this.confirmed.delete(op.key);
      this.version = version ?? this.version + 1;
    }
  }

  private confirm(key: string, cell: Cell | SetSnapshot["cells"][number]): void {
    this.remember(key, cell.id);
    this.confirmed.set(key, { key, ...cellState(cell) });
  }

  /** Suggestions the set held a copy of already: the acceptances' keys name those copies from now on. */
  private async adoptCopies(setId: number, accepts: Array<Extract<Op, { kind: "accept" }>>): Promise<void> {
    const { cells } = await this.writer.snapshot(setId);
    for (const accepted of accepts) {
      const copy = cells.find((cell) => cell.source_cell === accepted.source);
      if (!copy) continue;
      const previousKey = this.keys.get(copy.id);
      if (previousKey !== undefined && previousKey !== accepted.key) this.confirmed.delete(previousKey);
      this.confirm(accepted.key, copy);
    }
  }

  private async createSet(): Promise<void> {
    if (!this.ensureSet) throw new Error("This editor has no annotation set to save into.");
    const ref = await this.ensureSet();
    this.setId = ref.id;
    this.version = ref.version;
    if (ref.cells) this.confirmCells(ref.cells);
  }

  private async failed(ops: Op[], error: unknown): Promise<void> {
    const status = error instanceof ApiError ? error.status : -1;
    const current = error instanceof ApiError ? (error.body.current as SetSnapshot | undefined) : undefined;
    if (status === 409 && current) {
      this.openConflict(ops, current, describeError(error));
    } else if (status === 404 && !ops.some(isCreation) && this.setId !== null) {
      // A cell deleted elsewhere answers 404 before any version check: the same situation as a 409.
      try {
        this.openConflict(ops, await this.writer.snapshot(this.setId), "A cell you changed was deleted elsewhere.");
      } catch (snapshotError) {
        this.goOffline(ops, snapshotError);
      }
    } else if (status === 403) {
      this.queue.unshift(...ops);
      this.inFlight = [];
      this.state = "locked";
      this.message = describeError(error);
      this.changed();
    } else if (status === 0 || status >= 500 || status === 429) {
      this.goOffline(ops, error);
    } else if (status >= 400) {
      // The server refuses this change as such (e.g. a box outside the image): it can never be saved. Drop it and
      // say why; the view falls back to what the server has.
      this.inFlight = [];
      this.message = `Your change was refused: ${describeError(error)}`;
      this.changed();
      this.pump();
    } else {
      this.goOffline(ops, error);
    }
  }

  private goOffline(ops: Op[], error: unknown): void {
    this.queue.unshift(...ops);
    this.inFlight = [];
    this.state = "offline";
    this.message = `Not saved yet (${describeError(error)}); retrying.`;
    const delay = this.retryDelays[Math.min(this.failures, this.retryDelays.length - 1)];
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, delay);
    this.changed();
  }

  private openConflict(sent: Op[], current: SetSnapshot, message: string): void {
    this.inFlight = [];
    const mine = [...sent, ...this.queue];
    this.queue = mine;
    // A suggestion accepted here and in the other change too: the other change's copy takes this page's key.
    for (const op of mine) {
      const copy = op.kind === "accept" ? current.cells.find((cell) => cell.source_cell === op.source) : undefined;
      if (copy && !this.keys.has(copy.id)) this.remember(op.key, copy.id);
    }
    const server = fromSnapshot(current, (id) => this.keyOfId(id));
    for (const cell of current.cells) this.remember(this.keyOfId(cell.id), cell.id);
    const before = applyOps(this.confirmed, mine);
    const { ops, notes } = rebase(mine, server, before);
    this.conflict = {
      message,
      serverVersion: current.version,
      theirs: diffCells(this.confirmed, server),
      mine,
      merged: applyOps(server, ops),
      rebased: ops,
      notes,
      server,
    };
    this.state = "conflict";
    this.message = message;
    this.changed();
  }
}

/** The next operations to send: the first queued one, or the run of acceptances it starts (one /accept request). */
function nextBatch(queue: readonly Op[]): Op[] {
  if (queue[0]?.kind !== "accept") return queue.slice(0, 1);
  const end = queue.findIndex((op) => op.kind !== "accept");
  return queue.slice(0, end < 0 ? queue.length : end);
}
