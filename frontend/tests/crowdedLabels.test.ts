import { describe, expect, it } from "vitest";
import { crowdedKeys } from "../src/logic/geometry";

describe("labels of overlapping boxes", () => {
  it("marks the boxes that overlap another, and only those", () => {
    const items = [
      { key: "a", box: { x: 0, y: 0, width: 50, height: 50 } },
      { key: "b", box: { x: 40, y: 40, width: 50, height: 50 } }, // overlaps a
      { key: "c", box: { x: 200, y: 200, width: 50, height: 50 } }, // alone
      { key: "d", box: { x: 50, y: 0, width: 10, height: 10 } }, // touches a's edge only
    ];
    expect([...crowdedKeys(items)].sort()).toEqual(["a", "b"]);
  });
});
