import { describe, expect, it } from "vitest";
import type { ReviewConflict } from "../src/api/review";
import {
  customDecision,
  fieldRows,
  firstUnsettled,
  nextUnsettled,
  partIn,
  regionOf,
  waitsFor,
  withReason,
} from "../src/pages/crosscheck/state";

const box = (x: number, y: number) => ({ id: 1, x, y, width: 10, height: 10, countable: true, cell_class: 11 });

function conflict(overrides: Partial<ReviewConflict> = {}): ReviewConflict {
  return {
    id: 1,
    field: 5,
    cell_review: null,
    kind: "pair",
    kinds: ["class"],
    iou: 0.9,
    status: "open",
    version: 1,
    a: { annotator: 1, annotator_username: "anna", cell: box(0, 0), decision: "" },
    b: { annotator: 2, annotator_username: "bert", cell: box(20, 5), decision: "" },
    your_side: null,
    resolution: "",
    final_cell: null,
    reason: "",
    resolved_by: null,
    resolved_by_username: null,
    resolved_at: null,
    created_at: "2024-01-01T00:00:00Z",
    ...overrides,
  };
}

describe("who does what in the cross-check", () => {
  it("lets the field's annotators concede or keep, an adjudicator decide, everyone else read", () => {
    expect(partIn(conflict({ your_side: "a" }), true)).toBe("annotator");
    expect(partIn(conflict(), true)).toBe("adjudicator");
    expect(partIn(conflict(), false)).toBe("reader");
  });

  it("says which conflicts wait for the reader", () => {
    expect(waitsFor(conflict({ status: "escalated" }), true)).toBe(true);
    expect(waitsFor(conflict({ status: "adjudicated" }), true)).toBe(false);
    expect(waitsFor(conflict({ your_side: "b" }), false)).toBe(true);
    const answered = conflict({ your_side: "b" });
    answered.b.decision = "keep";
    expect(waitsFor(answered, false)).toBe(false);
    expect(waitsFor(conflict(), false)).toBe(false);
  });

  it("lists fields with those waiting for the reader first", () => {
    const rows = fieldRows(
      [
        conflict({ id: 1, field: 3, status: "resolved" }),
        conflict({ id: 2, field: 9, status: "escalated" }),
        conflict({ id: 3, field: 9, status: "open" }),
      ],
      true,
    );
    expect(rows.map((r) => [r.field, r.waiting, r.open, r.escalated, r.settled])).toEqual([
      [9, 2, 1, 1, 0],
      [3, 0, 0, 0, 1],
    ]);
  });

  it("opens at the first unsettled conflict and moves on to the next after a decision", () => {
    const list = [conflict({ status: "resolved" }), conflict(), conflict({ status: "adjudicated" }), conflict()];
    expect(firstUnsettled(list)).toBe(1);
    expect(nextUnsettled(list, 1)).toBe(3);
    expect(nextUnsettled(list, 3)).toBe(3);
    expect(firstUnsettled([conflict({ status: "resolved" })])).toBe(0);
  });

  it("shows the region around both versions and decides a class on A's box (else B's)", () => {
    expect(regionOf(conflict())).toEqual({ x: 0, y: 0, width: 30, height: 15 });
    const onlyB = conflict({ a: { annotator: 1, annotator_username: "anna", cell: null, decision: "" } });
    expect(customDecision(onlyB, 12)).toEqual({
      decision: "custom",
      cell: { x: 20, y: 5, width: 10, height: 10, countable: true, cell_class: 12 },
    });
    const none = conflict({ a: onlyB.a, b: { ...onlyB.a, annotator: 2 } });
    expect(customDecision(none, 12)).toBeNull();
  });

  it("sends an adjudicator's reason with the decision, never an annotator's", () => {
    expect(withReason({ decision: "a" }, "  clearer nucleus ", conflict())).toEqual({
      decision: "a",
      reason: "clearer nucleus",
    });
    expect(withReason({ decision: "keep" }, "mine", conflict({ your_side: "a" }))).toEqual({ decision: "keep" });
    expect(withReason({ decision: "b" }, "  ", conflict())).toEqual({ decision: "b" });
  });
});
