import { describe, expect, it } from "vitest";
import {
  boxAround,
  clampBox,
  cropView,
  iou,
  median,
  moveBox,
  readingOrder,
  resizeBox,
  sameBox,
  stepIndex,
} from "../src/logic/geometry";

const box = (x: number, y: number, width: number, height: number) => ({ x, y, width, height });

describe("boxes", () => {
  it("computes IoU by hand: two 10x10 boxes overlapping 5x10 share 50 of 150", () => {
    expect(iou(box(0, 0, 10, 10), box(5, 0, 10, 10))).toBeCloseTo(50 / 150);
    expect(iou(box(0, 0, 10, 10), box(20, 20, 5, 5))).toBe(0);
    expect(iou(box(0, 0, 10, 10), box(0, 0, 10, 10))).toBe(1);
  });

  it("moves a box back inside the image and shrinks one larger than it", () => {
    expect(clampBox(box(-5, 470, 50, 40), 640, 480)).toEqual(box(0, 440, 50, 40));
    expect(clampBox(box(10, 10, 900, 20), 640, 480)).toEqual(box(0, 10, 640, 20));
  });

  it("moves and resizes by key steps without leaving the image", () => {
    expect(moveBox(box(10, 10, 20, 20), "left", 4, 100, 100)).toEqual(box(6, 10, 20, 20));
    expect(moveBox(box(2, 10, 20, 20), "left", 4, 100, 100)).toEqual(box(0, 10, 20, 20));
    expect(moveBox(box(10, 78, 20, 20), "down", 4, 100, 100)).toEqual(box(10, 80, 20, 20));
    expect(resizeBox(box(10, 10, 20, 20), "right", 4, 100, 100)).toEqual(box(10, 10, 24, 20));
    expect(resizeBox(box(10, 10, 5, 5), "up", 4, 100, 100)).toEqual(box(10, 10, 5, 4));
    expect(resizeBox(box(90, 10, 8, 8), "right", 4, 100, 100)).toEqual(box(90, 10, 10, 8));
  });

  it("centres a new box on a point, inside the image", () => {
    expect(boxAround(50, 50, 20, 640, 480)).toEqual(box(40, 40, 20, 20));
    expect(boxAround(5, 5, 20, 640, 480)).toEqual(box(0, 0, 20, 20));
  });

  it("compares boxes with a tolerance", () => {
    expect(sameBox(box(1, 1, 1, 1), box(1.005, 1, 1, 1))).toBe(true);
    expect(sameBox(box(1, 1, 1, 1), box(1.5, 1, 1, 1))).toBe(false);
  });
});

describe("reading order", () => {
  it("reads rows top to bottom and each row left to right", () => {
    const a = { ...box(300, 12, 40, 40), name: "a" };
    const b = { ...box(10, 20, 40, 40), name: "b" }; // same row as a, further left, slightly lower
    const c = { ...box(50, 200, 40, 40), name: "c" };
    const d = { ...box(5, 210, 40, 40), name: "d" };
    expect(readingOrder([c, a, d, b]).map((x) => x.name)).toEqual(["b", "a", "d", "c"]);
  });

  it("steps through a list with wrap-around", () => {
    expect(stepIndex(-1, 1, 3)).toBe(0);
    expect(stepIndex(-1, -1, 3)).toBe(2);
    expect(stepIndex(2, 1, 3)).toBe(0);
    expect(stepIndex(0, -1, 3)).toBe(2);
    expect(stepIndex(0, 1, 0)).toBe(-1);
  });

  it("takes the median of odd and even lists", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

describe("crop view", () => {
  it("shows a 40x20 box with 25% margin as a 60 px square scaled to the crop", () => {
    // side = 40 * 1.5 = 60 image px, shown at 120 px: scale 2; square centred on (120, 60) starts at (90, 30).
    const view = cropView(box(100, 50, 40, 20), 640, 480, 120, 0.25);
    expect(view.scale).toBe(2);
    expect(view.backgroundWidth).toBe(1280);
    expect(view.backgroundHeight).toBe(960);
    expect(view.offsetX).toBe(-180);
    expect(view.offsetY).toBe(-60);
  });
});
