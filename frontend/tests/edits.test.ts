import { describe, expect, it } from "vitest";
import {
  applyOps,
  changesBetween,
  diffCells,
  enqueue,
  fromSnapshot,
  inverse,
  rebase,
  suggestionCopy,
  type LocalCell,
  type Op,
} from "../src/logic/edits";

const state = {
  x: 0,
  y: 0,
  width: 10,
  height: 10,
  countable: true,
  cell_class: null as number | null,
  source_cell: null as number | null,
};
const local = (key: string, overrides: Partial<LocalCell> = {}): LocalCell => ({ key, ...state, ...overrides });
const map = (...cells: LocalCell[]) => new Map(cells.map((c) => [c.key, c]));

describe("the queue of changes", () => {
  it("folds an edit of a queued creation into the creation", () => {
    const queue = enqueue([{ kind: "create", key: "n1", data: state }], {
      kind: "update",
      key: "n1",
      changes: { cell_class: 4 },
    });
    expect(queue).toEqual([{ kind: "create", key: "n1", data: { ...state, cell_class: 4 } }]);
  });

  it("merges two queued edits of one cell, the later winning", () => {
    const queue = enqueue([{ kind: "update", key: "c1", changes: { cell_class: 1, countable: false } }], {
      kind: "update",
      key: "c1",
      changes: { cell_class: 2 },
    });
    expect(queue).toEqual([{ kind: "update", key: "c1", changes: { cell_class: 2, countable: false } }]);
  });

  it("drops every trace of a cell deleted before its creation was sent", () => {
    const queue: Op[] = [
      { kind: "create", key: "n1", data: state },
      { kind: "update", key: "c2", changes: { countable: false } },
      { kind: "update", key: "n1", changes: { x: 3 } },
    ];
    expect(enqueue(queue, { kind: "delete", key: "n1" })).toEqual([
      { kind: "update", key: "c2", changes: { countable: false } },
    ]);
  });

  it("replaces queued edits of a saved cell by its deletion", () => {
    expect(enqueue([{ kind: "update", key: "c1", changes: { x: 2 } }], { kind: "delete", key: "c1" })).toEqual([
      { kind: "delete", key: "c1" },
    ]);
  });

  it("keeps an edit of a queued acceptance apart (the server copies a suggestion as predicted)", () => {
    const accept: Op = { kind: "accept", key: "n1", source: 7, data: { ...state, source_cell: 7 } };
    const edit: Op = { kind: "update", key: "n1", changes: { cell_class: 4 } };
    expect(enqueue([accept], edit)).toEqual([accept, edit]);
    // Deleting it before it was sent removes both.
    expect(enqueue([accept, edit], { kind: "delete", key: "n1" })).toEqual([]);
  });

  it("shows an accepted suggestion at once as the server will copy it", () => {
    const suggestion = { id: 7, x: 1, y: 2, width: 3, height: 4, countable: false, cell_class: 11 };
    const data = suggestionCopy(suggestion);
    expect(data).toEqual({ x: 1, y: 2, width: 3, height: 4, countable: false, cell_class: 11, source_cell: 7 });
    expect(applyOps(map(), [{ kind: "accept", key: "n1", source: 7, data }]).get("n1")).toEqual({ key: "n1", ...data });
    expect(inverse(map(), { kind: "accept", key: "n1", source: 7, data })).toEqual({ kind: "delete", key: "n1" });
  });

  it("applies operations to the confirmed cells without changing them", () => {
    const confirmed = map(local("c1"), local("c2"));
    const view = applyOps(confirmed, [
      { kind: "update", key: "c1", changes: { cell_class: 5 } },
      { kind: "delete", key: "c2" },
      { kind: "create", key: "n1", data: { ...state, x: 7 } },
    ]);
    expect([...view.keys()]).toEqual(["c1", "n1"]);
    expect(view.get("c1")?.cell_class).toBe(5);
    expect(confirmed.get("c1")?.cell_class).toBeNull();
  });
});

describe("undo", () => {
  it("undoes a creation by deleting, a deletion by re-creating, an edit by restoring the old values", () => {
    const before = map(local("c1", { cell_class: 3, x: 4 }));
    expect(inverse(before, { kind: "create", key: "n1", data: state })).toEqual({ kind: "delete", key: "n1" });
    expect(inverse(before, { kind: "delete", key: "c1" })).toEqual({
      kind: "create",
      key: "c1",
      data: { ...state, cell_class: 3, x: 4 },
    });
    expect(inverse(before, { kind: "update", key: "c1", changes: { cell_class: 9 } })).toEqual({
      kind: "update",
      key: "c1",
      changes: { cell_class: 3 },
    });
    expect(inverse(before, { kind: "update", key: "gone", changes: { x: 1 } })).toBeNull();
  });
});

describe("rebase after a 409", () => {
  it("keeps edits of cells that still exist and creations", () => {
    const server = map(local("c1", { cell_class: 2 }), local("c9"));
    const ops: Op[] = [
      { kind: "update", key: "c1", changes: { countable: false } },
      { kind: "create", key: "n1", data: state },
    ];
    const { ops: rebased, notes } = rebase(ops, server, map(local("c1", { countable: false }), local("n1")));
    expect(rebased).toEqual(ops);
    expect(notes).toEqual([]);
    // The other change (class 2) and mine (uncountable) are both in the result.
    expect(applyOps(server, rebased).get("c1")).toMatchObject({ cell_class: 2, countable: false });
  });

  it("re-creates a cell the user changed that the other change deleted, as the user left it", () => {
    const view = map(local("c1", { cell_class: 7, x: 3 }));
    const { ops, notes } = rebase([{ kind: "update", key: "c1", changes: { cell_class: 7 } }], map(), view);
    expect(ops).toEqual([{ kind: "create", key: "c1", data: { ...state, cell_class: 7, x: 3 } }]);
    expect(notes).toHaveLength(1);
  });

  it("does not accept a suggestion twice when the other change accepted it already", () => {
    // The caller keyed the other change's copy of suggestion 7 by this page's key "n1".
    const server = map(local("n1", { source_cell: 7, cell_class: 11 }));
    const ops: Op[] = [
      { kind: "accept", key: "n1", source: 7, data: { ...state, source_cell: 7, cell_class: 11 } },
      { kind: "update", key: "n1", changes: { cell_class: 12 } },
    ];
    const { ops: rebased, notes } = rebase(ops, server, map());
    expect(rebased).toEqual([ops[1]]);
    expect(notes[0]).toMatch(/already accepted/);
  });

  it("drops the deletion of a cell that is gone already", () => {
    const { ops, notes } = rebase([{ kind: "delete", key: "c1" }], map(local("c2")), map());
    expect(ops).toEqual([]);
    expect(notes[0]).toMatch(/already deleted/);
  });
});

describe("differences", () => {
  it("names what another change added, removed and changed", () => {
    const before = map(local("c1"), local("c2"), local("c3"));
    const after = map(local("c1", { cell_class: 4 }), local("c3"), local("c4"));
    const diff = diffCells(before, after);
    expect(diff.added.map((c) => c.key)).toEqual(["c4"]);
    expect(diff.removed.map((c) => c.key)).toEqual(["c2"]);
    expect(diff.changed).toEqual([{ before: before.get("c1"), after: after.get("c1"), attributes: ["cell_class"] }]);
  });

  it("reports a moved box once, as 'box'", () => {
    expect(changesBetween(local("a"), local("a", { x: 5, width: 20 }))).toEqual({ x: 5, y: 0, width: 20, height: 10 });
    expect(diffCells(map(local("a")), map(local("a", { x: 5, width: 20 }))).changed[0].attributes).toEqual(["box"]);
  });

  it("keys snapshot cells by the UI's own key when it knows the id", () => {
    const cells = fromSnapshot(
      {
        cells: [
          { id: 5, ...state },
          { id: 6, ...state },
        ],
      },
      (id) => (id === 5 ? "n-local" : `c${id}`),
    );
    expect([...cells.keys()]).toEqual(["n-local", "c6"]);
  });
});
