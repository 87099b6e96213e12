import { describe, expect, it } from "vitest";
import {
  countedItems,
  fieldItems,
  groupItems,
  jumpGroup,
  moveFocus,
  range,
  type GalleryGroup,
  type GalleryItem,
} from "../src/logic/gallery";
import { Taxonomy } from "../src/logic/taxonomy";
import { cell, localCell, taxonomyClasses } from "./fixtures";

const taxonomy = new Taxonomy(taxonomyClasses());
const mine = localCell;

describe("which cells a field shows", () => {
  const suggestions = [
    cell({ id: 1, x: 0, y: 0, cell_class: 11, confidence: 0.6 }), // taken over by my cell (source_cell)
    cell({ id: 2, x: 100, y: 100, cell_class: 0, confidence: 0.4 }), // covered by a box I drew (IoU 0.82)
    cell({ id: 3, x: 300, y: 300, cell_class: 16, confidence: 0.9 }), // open
  ];

  it("shows my cells and the suggestions I have not taken over or covered", () => {
    const myCells = new Map([
      ["c10", mine("c10", { source_cell: 1, cell_class: 11 })],
      ["n1", mine("n1", { x: 102, y: 100 })],
    ]);
    const items = fieldItems({ fieldId: 7, mine: myCells, suggestions, truth: [] }, "mine");
    expect(items.map((i) => [i.key, i.origin])).toEqual([
      ["7:c10", "mine"],
      ["7:n1", "mine"],
      ["7:s3", "suggestion"],
    ]);
    // A suggestion kept as predicted keeps its confidence; a hand-drawn box has none.
    expect(items.map((i) => i.confidence)).toEqual([0.6, null, 0.9]);
  });

  it("drops the confidence of a suggestion whose class I corrected", () => {
    const myCells = new Map([["c10", mine("c10", { source_cell: 1, cell_class: 12 })]]);
    expect(fieldItems({ fieldId: 7, mine: myCells, suggestions, truth: [] }, "mine")[0].confidence).toBeNull();
  });

  it("shows one source only: the consensus never falls back to the model's cells", () => {
    const truth = [cell({ id: 50 })];
    const consensus = fieldItems({ fieldId: 1, mine: null, suggestions, truth }, "consensus");
    expect(consensus.map((i) => i.origin)).toEqual(["truth"]);
    expect(fieldItems({ fieldId: 1, mine: null, suggestions, truth: [] }, "consensus")).toEqual([]);
    const model = fieldItems({ fieldId: 1, mine: null, suggestions: [], truth: suggestions }, "model");
    expect(model.map((i) => i.origin)).toEqual(["suggestion", "suggestion", "suggestion"]);
  });

  it("counts only my cells under my work, never the suggestions I have not taken over", () => {
    const myCells = new Map([["c10", mine("c10", { source_cell: 1, cell_class: 11 })]]);
    const items = fieldItems({ fieldId: 7, mine: myCells, suggestions, truth: [] }, "mine");
    expect(countedItems(items, "mine").map((i) => i.key)).toEqual(["7:c10"]);
    expect(countedItems(items, "consensus")).toHaveLength(items.length);
  });
});

function item(key: string, cell_class: number | null, confidence: number | null, countable = true): GalleryItem {
  return {
    key,
    fieldId: 1,
    cellKey: key,
    origin: "mine",
    box: { x: 0, y: 0, width: 1, height: 1 },
    cell_class,
    countable,
    confidence,
    suggestion: null,
  };
}

describe("groups", () => {
  it("groups by class in taxonomy order, unclassified first and uncountable last, least confident first", () => {
    const groups = groupItems(
      [
        item("a", 12, 0.9),
        item("b", 0, null),
        item("c", 12, 0.3),
        item("d", null, null),
        item("e", 12, null, false),
        item("f", 12, null),
      ],
      taxonomy,
    );
    expect(groups.map((g) => [g.id, g.items.map((i) => i.key)])).toEqual([
      ["unclassified", ["d"]],
      [0, ["b"]],
      [12, ["c", "a", "f"]],
      ["uncountable", ["e"]],
    ]);
  });
});

describe("keyboard focus", () => {
  const group = (id: number, keys: string[]): GalleryGroup => ({ id, items: keys.map((k) => item(k, id, null)) });
  // Two groups laid out three crops to a row:  a b c / d e   and   f g
  const groups = [group(0, ["a", "b", "c", "d", "e"]), group(1, ["f", "g"])];

  it("walks left and right through the whole gallery, stopping at the ends", () => {
    expect(moveFocus(groups, "e", "right", 3)).toBe("f");
    expect(moveFocus(groups, "a", "left", 3)).toBe("a");
    expect(moveFocus(groups, null, "down", 3)).toBe("a");
  });

  it("moves a row up and down, into the next group at the same column", () => {
    expect(moveFocus(groups, "b", "down", 3)).toBe("e");
    expect(moveFocus(groups, "c", "down", 3)).toBe("e"); // the last row is short: its last crop
    expect(moveFocus(groups, "e", "down", 3)).toBe("g");
    expect(moveFocus(groups, "g", "up", 3)).toBe("e");
    expect(moveFocus(groups, "f", "up", 3)).toBe("d");
    expect(moveFocus(groups, "b", "up", 3)).toBe("b");
  });

  it("jumps between groups and selects ranges in gallery order", () => {
    expect(jumpGroup(groups, "c", 1)).toBe("f");
    expect(jumpGroup(groups, "f", 1)).toBe("a");
    expect(jumpGroup(groups, "a", -1)).toBe("f");
    expect(range(groups, "g", "d")).toEqual(["d", "e", "f", "g"]);
  });
});
