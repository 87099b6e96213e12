import { describe, expect, it } from "vitest";
import type { GalleryGroup, GalleryItem } from "../src/logic/gallery";
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
} from "../src/pages/gallery/state";

function item(key: string, countable = true): GalleryItem {
  return {
    key,
    fieldId: fieldOfKey(key),
    cellKey: key.split(":")[1],
    origin: "mine",
    box: { x: 0, y: 0, width: 1, height: 1 },
    cell_class: 12,
    countable,
    confidence: null,
    suggestion: null,
  };
}

// Two groups, three crops to a row:  1:a 1:b 1:c / 2:d   and   2:e
const groups: GalleryGroup[] = [
  { id: 12, items: ["1:a", "1:b", "1:c", "2:d"].map((k) => item(k)) },
  { id: 16, items: [item("2:e")] },
];
const selected = (selection: Selection) => [...selection.selected].sort();

describe("the gallery's selection", () => {
  it("selects a crop by click, adds with Ctrl, selects a range with Shift", () => {
    let s = clicked(NOTHING, "1:b", { toggle: false, extend: false }, groups);
    expect([s.focus, s.anchor, selected(s)]).toEqual(["1:b", "1:b", ["1:b"]]);
    s = clicked(s, "2:e", { toggle: false, extend: true }, groups);
    expect(selected(s)).toEqual(["1:b", "1:c", "2:d", "2:e"]);
    s = clicked(s, "1:c", { toggle: true, extend: false }, groups);
    expect(selected(s)).toEqual(["1:b", "2:d", "2:e"]);
    // Shift without an anchor selects the crop alone.
    expect(selected(clicked(NOTHING, "1:c", { toggle: false, extend: true }, groups))).toEqual(["1:c"]);
  });

  it("moves the focus with arrows and extends the selection with Shift from where it started", () => {
    let s = focused(NOTHING, "1:a", false, groups);
    s = moved(s, "right", true, groups, 3);
    s = moved(s, "right", true, groups, 3);
    expect([s.focus, s.anchor, selected(s)]).toEqual(["1:c", "1:a", ["1:a", "1:b", "1:c"]]);
    s = moved(s, "down", false, groups, 3);
    expect([s.focus, s.anchor]).toEqual(["2:d", "2:d"]);
    expect(focused(s, null, false, groups)).toBe(s);
  });

  it("toggles the focused crop with Space (focusing the first crop when nothing is focused)", () => {
    let s = toggled(NOTHING, groups, 3);
    expect([s.focus, selected(s)]).toEqual(["1:a", []]);
    s = toggled(s, groups, 3);
    expect(selected(s)).toEqual(["1:a"]);
    s = toggled(s, groups, 3);
    expect(selected(s)).toEqual([]);
  });

  it("selects the focused crop's group, clears, and keeps a dragged crop's selection", () => {
    const s = groupSelected(focused(NOTHING, "2:e", false, groups), groups);
    expect(selected(s)).toEqual(["2:e"]);
    expect(selected(groupSelected(NOTHING, groups))).toEqual(["1:a", "1:b", "1:c", "2:d"]);
    expect(selected(cleared(s))).toEqual([]);
    const many = clicked(
      clicked(NOTHING, "1:a", { toggle: true, extend: false }, groups),
      "1:b",
      {
        toggle: true,
        extend: false,
      },
      groups,
    );
    expect(selected(dragStarted(many, "1:a"))).toEqual(["1:a", "1:b"]);
    expect(selected(dragStarted(many, "2:e"))).toEqual(["2:e"]);
  });

  it("acts on the selection, else on the focused crop", () => {
    const items = groups.flatMap((g) => g.items);
    expect(targets(NOTHING, items)).toEqual([]);
    expect(targets(focused(NOTHING, "1:b", false, groups), items).map((i) => i.key)).toEqual(["1:b"]);
    const s = clicked(NOTHING, "2:d", { toggle: false, extend: false }, groups);
    expect(targets({ ...s, focus: "1:a" }, items).map((i) => i.key)).toEqual(["2:d"]);
  });

  it("follows crops that were renamed (a suggestion taken over) and forgets those gone", () => {
    const s = clicked(NOTHING, "1:s7", { toggle: false, extend: false }, groups);
    const after = renamed(s, new Map([["1:s7", "1:n1"]]));
    expect([after.focus, after.anchor, selected(after)]).toEqual(["1:n1", "1:n1", ["1:n1"]]);
    const gone = pruned(after, new Set(["1:a"]));
    expect([gone.focus, selected(gone)]).toEqual([null, []]);
  });

  it("marks uncountable, or countable again when every chosen cell is uncountable", () => {
    expect(countableAfterToggle([item("1:a"), item("1:b", false)])).toBe(false);
    expect(countableAfterToggle([item("1:a", false), item("1:b", false)])).toBe(true);
    expect(countableAfterToggle([])).toBe(false);
  });
});
