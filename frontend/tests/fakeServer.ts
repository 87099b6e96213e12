// An in-memory annotation set that answers like the API: version check (409 with the current set), 404 for a
// cell that is gone, 400 for a box outside a 100x100 image, /accept copying the field's model suggestions.

import { ApiError } from "../src/api/http";
import type { AcceptedSuggestions, Cell, CellWrite, SetSnapshot } from "../src/api/shapes";
import type { CellWriter, Written } from "../src/logic/setEditor";
import { cell as makeCell } from "./fixtures";

export class FakeSet implements CellWriter {
  version = 1;
  cells = new Map<number, Cell>();
  /** the model's suggestions on the set's field, by id */
  suggestions = new Map<number, Cell>();
  nextId = 100;
  calls: string[] = [];
  failNext: ApiError | null = null;

  constructor(readonly id = 1) {}

  snapshotNow(): SetSnapshot {
    return {
      id: this.id,
      field: 1,
      kind: "annotator",
      status: "draft",
      version: this.version,
      cells: [...this.cells.values()],
    };
  }

  /** Another tab's change: a new cell, version bumped. */
  otherTabAdds(overrides: Partial<Cell> = {}): Cell {
    const added = makeCell({ id: this.nextId++, annotation_set: this.id, ...overrides });
    this.cells.set(added.id, added);
    this.version += 1;
    return added;
  }

  private check(version: number): void {
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = null;
      throw error;
    }
    if (version !== this.version) {
      throw new ApiError(
        409,
        {
          code: "conflict",
          detail: `The set changed (you sent ${version}, it is at ${this.version}).`,
          current: this.snapshotNow(),
        },
        "",
      );
    }
  }

  private validate(box: { x: number; width: number }): void {
    if (box.x + box.width > 100)
      throw new ApiError(
        400,
        { code: "invalid", detail: "The box lies outside the image.", errors: [{ field: "width", reason: "exceeds" }] },
        "",
      );
  }

  async create(setId: number, version: number, data: CellWrite): Promise<Written<Cell>> {
    this.calls.push(`create@${version}`);
    this.check(version);
    this.validate(data);
    const created = makeCell({ ...data, id: this.nextId++, annotation_set: setId });
    this.cells.set(created.id, created);
    return { value: created, version: ++this.version };
  }

  async accept(setId: number, version: number, ids: number[]): Promise<Written<Omit<AcceptedSuggestions, "version">>> {
    this.calls.push(`accept ${ids.join(",")}@${version}`);
    this.check(version);
    const unknown = ids.filter((id) => !this.suggestions.has(id));
    if (unknown.length)
      throw new ApiError(
        400,
        { code: "invalid", detail: `These are not model suggestions of this field: ${unknown}.` },
        "",
      );
    const copied = new Set([...this.cells.values()].map((c) => c.source_cell));
    const created = ids
      .filter((id) => !copied.has(id))
      .map((id) => {
        const { x, y, width, height, countable, cell_class } = this.suggestions.get(id) as Cell;
        const copy = makeCell({ id: this.nextId++, annotation_set: setId, x, y, width, height, countable, cell_class });
        return { ...copy, source_cell: id };
      });
    for (const copy of created) this.cells.set(copy.id, copy);
    return { value: { created, skipped: ids.filter((id) => copied.has(id)) }, version: ++this.version };
  }

  async update(cellId: number, version: number, changes: Partial<CellWrite>): Promise<Written<Cell>> {
    this.calls.push(`update ${cellId}@${version}`);
    const existing = this.cells.get(cellId);
    if (!existing) throw new ApiError(404, { code: "not_found", detail: `Cell ${cellId} does not exist.` }, "");
    this.check(version);
    const updated = { ...existing, ...changes };
    this.validate(updated);
    this.cells.set(cellId, updated);
    return { value: updated, version: ++this.version };
  }

  async delete(cellId: number, version: number): Promise<Written<null>> {
    this.calls.push(`delete ${cellId}@${version}`);
    if (!this.cells.has(cellId))
      throw new ApiError(404, { code: "not_found", detail: `Cell ${cellId} does not exist.` }, "");
    this.check(version);
    this.cells.delete(cellId);
    return { value: null, version: ++this.version };
  }

  async snapshot(): Promise<SetSnapshot> {
    return this.snapshotNow();
  }
}
