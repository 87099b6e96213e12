import { describe, expect, it } from "vitest";
import type { LocalCell } from "../src/logic/edits";
import type { Conflict } from "../src/logic/setEditor";
import { Taxonomy } from "../src/logic/taxonomy";
import {
  cellLabel,
  neighbours,
  openSuggestions,
  orderedKeys,
  readOnlyReason,
  selectedAfterRemoval,
  statusOnceStarted,
  stepped,
  submitCheck,
  suggestionKey,
  suggestionOf,
  viewItems,
} from "../src/pages/annotator/state";
import { cell, localCell, taxonomyClasses } from "./fixtures";

const taxonomy = new Taxonomy(taxonomyClasses());
const mine = localCell;
const cells = (...list: LocalCell[]) => new Map(list.map((c) => [c.key, c]));

describe("the annotator's suggestions", () => {
  const suggestions = [cell({ id: 7, x: 200 }), cell({ id: 8, x: 300 }), cell({ id: 9, x: 400 })];

  it("leaves out those taken over into my set and those dismissed", () => {
    const open = openSuggestions(suggestions, [mine("n1", { source_cell: 7 })], new Set([9]));
    expect(open.map((s) => s.id)).toEqual([8]);
  });

  it("keys suggestions apart from my cells", () => {
    const byId = new Map(suggestions.map((s) => [s.id, s]));
    expect(suggestionOf(suggestionKey(8), byId)?.id).toBe(8);
    expect(suggestionOf("n8", byId)).toBeUndefined();
    expect(suggestionOf(null, byId)).toBeUndefined();
  });
});

describe("what the viewer shows", () => {
  it("shows my cells in their lineage colour, uncountable ones grey, then the suggestions in amber", () => {
    const items = viewItems(
      {
        cells: cells(mine("n1", { cell_class: 11 }), mine("n2", { countable: false })),
        conflict: null,
        suggestions: [cell({ id: 7, cell_class: 16, confidence: 0.41 })],
        readOnly: false,
      },
      taxonomy,
    );
    expect(items.map((i) => [i.key, i.kind, i.label, i.colour, i.editable])).toEqual([
      ["n1", "mine", "w lymphoblast", "#1c7ed6", true],
      ["n2", "mine", "e lymphocyte · uncountable", "#868e96", true],
      ["s7", "suggestion", "AI monocyte 41%", "#f59f00", false],
    ]);
  });

  it("during a conflict marks the other change's cells and my unsaved ones, and locks editing", () => {
    const theirs = mine("c5", { cell_class: 16 });
    const conflict = {
      theirs: { added: [theirs], removed: [], changed: [] },
      rebased: [{ kind: "update", key: "c6", changes: { cell_class: 13 } }],
    } as unknown as Conflict;
    const items = viewItems(
      { cells: cells(theirs, mine("c6", { cell_class: 13 }), mine("c7")), conflict, suggestions: [], readOnly: false },
      taxonomy,
    );
    expect(items.map((i) => [i.key, i.emphasis, i.editable])).toEqual([
      ["c5", "theirs", false],
      ["c6", "pending", false],
      ["c7", "none", false],
    ]);
  });

  it("labels an unclassified cell", () => {
    expect(cellLabel({ cell_class: null, countable: true }, taxonomy)).toBe("unclassified");
  });
});

describe("moving through the cells", () => {
  const items = viewItems(
    {
      cells: cells(mine("b", { x: 100, y: 0 }), mine("a", { x: 0, y: 0 }), mine("c", { x: 0, y: 200 })),
      conflict: null,
      suggestions: [],
      readOnly: false,
    },
    taxonomy,
  );
  const keys = orderedKeys(items);

  it("goes in reading order, wrapping around", () => {
    expect(keys).toEqual(["a", "b", "c"]);
    expect(stepped(keys, null, 1)).toBe("a");
    expect(stepped(keys, "c", 1)).toBe("a");
    expect(stepped(keys, "a", -1)).toBe("c");
    expect(stepped([], null, 1)).toBeNull();
  });

  it("selects the next cell after a deletion, nothing after the last one", () => {
    expect(selectedAfterRemoval(keys, "a")).toBe("b");
    expect(selectedAfterRemoval(["a"], "a")).toBeNull();
  });
});

describe("the field's place and access", () => {
  it("names the neighbours among the case's fields", () => {
    expect(neighbours({ previous: 4, next: 6, before: 1, after: 1 }, { id: 5, case_code: "C1" })).toEqual({
      position: "2 of 3 in case C1",
      previous: 4,
      next: 6,
    });
    expect(neighbours({ previous: 4, next: null, before: 1, after: 0 }, { id: 5, case_code: "C1" }).next).toBeNull();
  });

  it("says why a field is read-only", () => {
    const access = { annotating: true, assignedToMe: true, readOnly: false, truthLabel: "" };
    expect(readOnlyReason(access)).toBe("");
    expect(readOnlyReason({ ...access, readOnly: true })).toBe(
      "You submitted this field; it can no longer be changed.",
    );
    expect(readOnlyReason({ ...access, assignedToMe: false })).toMatch(/not assigned to you/);
    expect(readOnlyReason({ ...access, annotating: false, truthLabel: "consensus set" })).toMatch(
      /looking at the consensus set; only annotators change boxes/,
    );
  });

  it("moves a new field into annotation once my set exists", () => {
    expect(statusOnceStarted("prelabelled")).toBe("in_annotation");
    expect(statusOnceStarted("uploaded")).toBe("in_annotation");
    expect(statusOnceStarted("in_crosscheck")).toBe("in_crosscheck");
  });
});

describe("submitting", () => {
  it("refuses while a countable cell has no class, naming the first", () => {
    const check = submitCheck(cells(mine("a"), mine("b", { cell_class: null })), 0, 3);
    expect(check).toEqual({ ready: false, problem: expect.stringMatching(/^1 countable cell/), first: "b" });
  });

  it("asks to confirm, saying what is left out", () => {
    const check = submitCheck(cells(mine("a"), mine("b", { cell_class: null, countable: false })), 2, 3);
    expect(check).toMatchObject({ ready: true, question: "Submit field #3?" });
    expect(check.ready && check.text).toMatch(/^2 cells; 2 suggestion\(s\) not accepted are left out\./);
  });
});
