import { describe, expect, it } from "vitest";
import type { ReviewStrategy } from "../src/api/reviewQueue";
import { chooseStrategy, decided, moved, START, undone, type Decision } from "../src/pages/reviewQueue/state";

const decision = (label: string, key: string | null = `n-${label}`): Decision => ({
  label,
  classId: null,
  fieldId: 1,
  key,
});

describe("the review queue's state", () => {
  it("moves one cell at a time within the queue", () => {
    expect(moved(START, -1, 3).index).toBe(0);
    expect(moved(moved(moved(START, 1, 3), 1, 3), 1, 3).index).toBe(2);
    expect(moved(START, 1, 0).index).toBe(0);
  });

  it("records a decision and shows the next cell", () => {
    const { state, replaced } = decided(START, { cellId: 40, index: 0 }, decision("lymphocyte"), 3);
    expect(state.index).toBe(1);
    expect(state.decisions.get(40)?.label).toBe("lymphocyte");
    expect(replaced).toBeNull();
    expect(START.decisions.size).toBe(0); // the earlier state is left as it was
  });

  it("replaces an earlier decision for the same cell and hands it back to be taken back", () => {
    const first = decided(START, { cellId: 40, index: 0 }, decision("lymphocyte"), 3).state;
    const back = moved(first, -1, 3);
    const { state, replaced } = decided(back, { cellId: 40, index: 0 }, decision("not a cell", null), 3);
    expect(replaced?.label).toBe("lymphocyte");
    expect(state.decisions.get(40)?.label).toBe("not a cell");
  });

  it("undoes the last decision and goes back to its cell", () => {
    let state = decided(START, { cellId: 40, index: 0 }, decision("a"), 3).state;
    state = decided(state, { cellId: 41, index: 1 }, decision("b"), 3).state;
    const first = undone(state);
    expect(first.undone?.label).toBe("b");
    expect(first.state.index).toBe(1);
    expect(first.state.decisions.has(41)).toBe(false);
    const second = undone(first.state);
    expect(second.undone?.label).toBe("a");
    expect(second.state.index).toBe(0);
    expect(undone(second.state).undone).toBeNull();
  });
});

describe("the strategy the page opens with", () => {
  const strategies: ReviewStrategy[] = [
    { name: "entropy", label: "Entropy", description: "", default: false },
    { name: "margin", label: "Margin", description: "", default: true },
  ];

  it("is the one the address names, else the server's default, else the first", () => {
    expect(chooseStrategy(strategies, "entropy")?.name).toBe("entropy");
    expect(chooseStrategy(strategies, "unknown")?.name).toBe("margin");
    expect(chooseStrategy(strategies, null)?.name).toBe("margin");
    expect(chooseStrategy([{ ...strategies[0] }], null)?.name).toBe("entropy");
    expect(chooseStrategy([], null)).toBeNull();
  });
});
