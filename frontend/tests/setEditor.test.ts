import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../src/api/http";
import { SetEditor } from "../src/logic/setEditor";
import { cell } from "./fixtures";
import { FakeSet } from "./fakeServer";

const box = { x: 10, y: 10, width: 20, height: 20, countable: true, cell_class: null, source_cell: null };

function editorOn(server: FakeSet, cells = [...server.cells.values()]): SetEditor {
  return new SetEditor({ setId: server.id, version: server.version, cells, writer: server, retryDelays: [10] });
}

describe("continuous saving", () => {
  it("sends each change with the version it was made on, one after another", async () => {
    const server = new FakeSet();
    const editor = editorOn(server);
    const key = editor.create(box);
    editor.update(key, { cell_class: 11 });
    editor.create({ ...box, x: 50 });
    expect(editor.view.get(key)?.cell_class).toBe(11); // shown at once
    await editor.flush();
    // The first creation went out at once; the edit follows it with the version the creation produced.
    expect(server.calls).toEqual(["create@1", "update 100@2", "create@3"]);
    expect(editor.version).toBe(4);
    expect([...server.cells.values()].map((c) => c.cell_class)).toEqual([11, null]);
    expect(editor.state).toBe("saved");
  });

  it("updates and deletes saved cells by their server id", async () => {
    const server = new FakeSet();
    server.cells.set(5, cell({ id: 5 }));
    const editor = editorOn(server);
    editor.update("c5", { countable: false });
    await editor.flush();
    editor.remove("c5");
    await editor.flush();
    expect(server.calls).toEqual(["update 5@1", "delete 5@2"]);
    expect(server.cells.size).toBe(0);
  });

  it("undoes the last change with a new write", async () => {
    const server = new FakeSet();
    server.cells.set(5, cell({ id: 5, cell_class: 3 }));
    const editor = editorOn(server);
    editor.update("c5", { cell_class: 4 });
    await editor.flush();
    expect(editor.undo()).toBe(true);
    await editor.flush();
    expect(server.cells.get(5)?.cell_class).toBe(3);
    expect(editor.undo()).toBe(false);
  });

  it("creates the set on the first write when there is none yet", async () => {
    const server = new FakeSet(42);
    const ensureSet = vi.fn().mockResolvedValue({ id: 42, version: 1 });
    const editor = new SetEditor({ setId: null, version: 1, cells: [], writer: server, ensureSet });
    editor.create(box);
    await editor.flush();
    expect(ensureSet).toHaveBeenCalledOnce();
    expect(editor.setId).toBe(42);
    expect([...server.cells.values()][0].annotation_set).toBe(42);
  });
});

describe("accepting model suggestions (/accept)", () => {
  function withSuggestions(): FakeSet {
    const server = new FakeSet();
    for (const id of [7, 8, 9]) server.suggestions.set(id, cell({ id, x: id, cell_class: 11, annotation_set: 99 }));
    return server;
  }

  it("lets the server copy the suggestion and shows the copy at once", async () => {
    const server = withSuggestions();
    const editor = editorOn(server);
    const key = editor.accept(server.suggestions.get(7)!);
    expect(editor.view.get(key)).toMatchObject({ x: 7, cell_class: 11, source_cell: 7 });
    await editor.flush();
    expect(server.calls).toEqual(["accept 7@1"]);
    expect([...server.cells.values()]).toMatchObject([{ x: 7, cell_class: 11, source_cell: 7 }]);
    // Later edits reach the copy by its server id.
    editor.update(key, { countable: false });
    await editor.flush();
    expect(server.calls[1]).toMatch(/^update \d+@2$/);
  });

  it("accepts with another class as an acceptance followed by an edit, undone in one step", async () => {
    const server = withSuggestions();
    const editor = editorOn(server);
    const key = editor.accept(server.suggestions.get(8)!, { cell_class: 12 });
    expect(editor.view.get(key)?.cell_class).toBe(12);
    await editor.flush();
    expect(server.calls).toEqual(["accept 8@1", `update ${[...server.cells.keys()][0]}@2`]);
    expect([...server.cells.values()][0]).toMatchObject({ cell_class: 12, source_cell: 8 });
    expect(editor.undo()).toBe(true);
    await editor.flush();
    expect(server.cells.size).toBe(0);
    expect(editor.canUndo()).toBe(false);
  });

  it("sends a run of acceptances (accept all) as one request", async () => {
    const server = withSuggestions();
    const editor = editorOn(server);
    editor.create(box); // goes out at once; the acceptances queue behind it
    for (const id of [7, 8, 9]) editor.accept(server.suggestions.get(id)!);
    await editor.flush();
    expect(server.calls).toEqual(["create@1", "accept 7,8,9@2"]);
    expect(editor.version).toBe(3);
    expect(new Set([...editor.view.values()].map((c) => c.source_cell))).toEqual(new Set([null, 7, 8, 9]));
  });

  it("after a 409, keeps the other change's copy of a suggestion both accepted and edits that copy", async () => {
    const server = withSuggestions();
    const editor = editorOn(server);
    const theirs = server.otherTabAdds({ x: 7, cell_class: 11, source_cell: 7 });
    const key = editor.accept(server.suggestions.get(7)!, { cell_class: 13 });
    await editor.flush().catch(() => undefined);
    expect(editor.conflict?.notes).toEqual(["A suggestion you accepted was already accepted in the other change."]);
    editor.keepMine();
    await editor.flush();
    expect(server.cells.size).toBe(1);
    expect(server.cells.get(theirs.id)?.cell_class).toBe(13);
    expect(editor.view.get(key)?.cell_class).toBe(13);
  });

  it("drops an acceptance the server refuses and says why", async () => {
    const server = withSuggestions();
    const editor = editorOn(server);
    editor.accept({ ...server.suggestions.get(7)!, id: 70 });
    await editor.flush();
    expect(editor.message).toMatch(/refused: These are not model suggestions/);
    expect(editor.view.size).toBe(0);
  });
});

describe("a stale version (409)", () => {
  it("stops, shows both changes, and on 'keep both' saves mine on top of the other", async () => {
    const server = new FakeSet();
    server.cells.set(5, cell({ id: 5, cell_class: 1 }));
    const editor = editorOn(server);
    const theirs = server.otherTabAdds({ x: 60, cell_class: 12 });
    editor.update("c5", { cell_class: 11 });
    await expect(editor.flush()).rejects.toThrow(/changed/);
    const conflict = editor.conflict!;
    expect(editor.state).toBe("conflict");
    expect(conflict.theirs.added.map((c) => c.cell_class)).toEqual([12]);
    expect(conflict.mine).toEqual([{ kind: "update", key: "c5", changes: { cell_class: 11 } }]);
    // The preview holds the other tab's cell and my class change.
    expect([...conflict.merged.values()].map((c) => c.cell_class).sort()).toEqual([11, 12]);
    // My change is still shown and not lost while the user decides.
    expect(editor.view.get("c5")?.cell_class).toBe(11);

    editor.keepMine();
    await editor.flush();
    expect(server.cells.get(5)?.cell_class).toBe(11);
    expect(server.cells.get(theirs.id)?.cell_class).toBe(12);
    expect(editor.view.size).toBe(2);
    expect(server.calls.slice(-1)).toEqual(["update 5@2"]);
  });

  it("drops my changes on 'discard' and shows the server's set", async () => {
    const server = new FakeSet();
    server.cells.set(5, cell({ id: 5 }));
    const editor = editorOn(server);
    server.otherTabAdds();
    editor.remove("c5");
    await editor.flush().catch(() => undefined);
    editor.discardMine();
    expect(editor.state).toBe("saved");
    expect(editor.view.size).toBe(2);
    expect(server.cells.size).toBe(2);
    expect(editor.version).toBe(server.version);
  });

  it("treats a cell deleted elsewhere (404) as a conflict and re-creates my edited cell", async () => {
    const server = new FakeSet();
    server.cells.set(5, cell({ id: 5 }));
    const editor = editorOn(server);
    server.cells.delete(5);
    server.version += 1;
    editor.update("c5", { cell_class: 2 });
    await editor.flush().catch(() => undefined);
    expect(editor.conflict?.theirs.removed).toHaveLength(1);
    editor.keepMine();
    await editor.flush();
    expect([...server.cells.values()].map((c) => c.cell_class)).toEqual([2]);
  });
});

describe("other failures", () => {
  it("drops a change the server refuses as invalid and says why", async () => {
    const server = new FakeSet();
    const editor = editorOn(server);
    editor.create({ ...box, x: 95 });
    const ok = editor.create(box);
    await editor.flush();
    expect(editor.message).toMatch(/refused: The box lies outside the image/);
    expect([...editor.view.keys()]).toEqual([ok]);
    expect(server.cells.size).toBe(1);
  });

  it("keeps changes while the server cannot be reached and retries", async () => {
    const server = new FakeSet();
    const editor = new SetEditor({ setId: server.id, version: 1, cells: [], writer: server, retryDelays: [200] });
    server.failNext = new ApiError(0, {}, "The server could not be reached.");
    editor.create(box);
    await vi.waitFor(() => expect(editor.state).toBe("offline"), { interval: 5 });
    expect(editor.message).toMatch(/could not be reached/);
    expect(editor.pendingCount).toBe(1);
    await editor.flush();
    expect(server.cells.size).toBe(1);
    expect(editor.state).toBe("saved");
  });

  it("stops on a locked set and keeps the changes", async () => {
    const server = new FakeSet();
    const editor = editorOn(server);
    server.failNext = new ApiError(403, { detail: "This annotation set is submitted and locked." }, "");
    editor.create(box);
    await expect(editor.flush()).rejects.toThrow(/locked/);
    expect(editor.state).toBe("locked");
    expect(editor.pendingCount).toBe(1);
  });
});
