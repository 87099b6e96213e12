// Boxes in image pixels (x, y = top-left corner), as the API stores them.

import type { Box } from "../api/shapes";

export function iou(a: Box, b: Box): number {
  const left = Math.max(a.x, b.x);
  const top = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  const overlap = Math.max(0, right - left) * Math.max(0, bottom - top);
  const union = a.width * a.height + b.width * b.height - overlap;
  return union > 0 ? overlap / union : 0;
}

/** The box moved and shrunk as little as needed to lie inside a width x height image (at least 1 px). */
export function clampBox(box: Box, width: number, height: number): Box {
  const w = Math.min(Math.max(box.width, 1), width);
  const h = Math.min(Math.max(box.height, 1), height);
  const x = Math.min(Math.max(box.x, 0), width - w);
  const y = Math.min(Math.max(box.y, 0), height - h);
  return { x: round2(x), y: round2(y), width: round2(w), height: round2(h) };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export function sameBox(a: Box, b: Box, tolerance = 0.01): boolean {
  return (
    Math.abs(a.x - b.x) <= tolerance &&
    Math.abs(a.y - b.y) <= tolerance &&
    Math.abs(a.width - b.width) <= tolerance &&
    Math.abs(a.height - b.height) <= tolerance
  );
}

/**
 * Reading order for next/previous cell: rows from top to bottom, left to right within a row. Two boxes share a
 * row when their vertical centres are closer than half the smaller height, so a slightly lower box to the left
 * still comes first.
 */
export function readingOrder<T extends Box>(boxes: readonly T[]): T[] {
  const byTop = [...boxes].sort((a, b) => centreY(a) - centreY(b) || a.x - b.x);
  const rows: T[][] = [];
  for (const box of byTop) {
    const row = rows[rows.length - 1];
    const anchor = row?.[0];
    if (row && anchor && Math.abs(centreY(box) - centreY(anchor)) < Math.min(box.height, anchor.height) / 2)
      row.push(box);
    else rows.push([box]);
  }
  return rows.flatMap((row) => row.sort((a, b) => a.x - b.x));
}

function centreY(box: Box): number {
  return box.y + box.height / 2;
}

/** The index after (step 1) or before (step -1) `current` in a list of n, wrapping; -1 when the list is empty. */
export function stepIndex(current: number, step: 1 | -1, n: number): number {
  if (n === 0) return -1;
  if (current < 0) return step === 1 ? 0 : n - 1;
  return (current + step + n) % n;
}

export type Nudge = "left" | "right" | "up" | "down";

/** Move a box by `pixels` in a direction, kept inside the image. */
export function moveBox(box: Box, direction: Nudge, pixels: number, width: number, height: number): Box {
  const dx = direction === "left" ? -pixels : direction === "right" ? pixels : 0;
  const dy = direction === "up" ? -pixels : direction === "down" ? pixels : 0;
  return clampBox({ ...box, x: box.x + dx, y: box.y + dy }, width, height);
}

/** Grow (right/down) or shrink (left/up) a box from its top-left corner, never below 4 px, kept inside. */
export function resizeBox(box: Box, direction: Nudge, pixels: number, width: number, height: number): Box {
  const dw = direction === "left" ? -pixels : direction === "right" ? pixels : 0;
  const dh = direction === "up" ? -pixels : direction === "down" ? pixels : 0;
  const w = Math.min(Math.max(box.width + dw, 4), width - box.x);
  const h = Math.min(Math.max(box.height + dh, 4), height - box.y);
  return clampBox({ ...box, width: w, height: h }, width, height);
}

/** A square box of side `size` centred on (cx, cy), inside the image. */
export function boxAround(cx: number, cy: number, size: number, width: number, height: number): Box {
  return clampBox({ x: cx - size / 2, y: cy - size / 2, width: size, height: size }, width, height);
}

export function median(values: readonly number[]): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface CropView {
  /** pixels of the crop per image pixel */
  scale: number;
  /** CSS background-size, px */
  backgroundWidth: number;
  backgroundHeight: number;
  /** CSS background-position, px */
  offsetX: number;
  offsetY: number;
}

/**
 * How to show a square crop of `size` px around a box with the field image as a CSS background: the square's side
 * is the box's longer side plus `margin` of it on each side, centred on the box. No canvas, and one image download
 * per field however many crops show it.
 */
export function cropView(box: Box, fieldWidth: number, fieldHeight: number, size: number, margin: number): CropView {
  const side = Math.max(box.width, box.height, 1) * (1 + 2 * margin);
  const scale = size / side;
  const left = box.x + box.width / 2 - side / 2;
  const top = box.y + box.height / 2 - side / 2;
  return {
    scale,
    backgroundWidth: fieldWidth * scale,
    backgroundHeight: fieldHeight * scale,
    offsetX: -left * scale,
    offsetY: -top * scale,
  };
}

/** The smallest box around `boxes` (at least one). */
export function boxUnion(boxes: readonly Box[]): Box {
  const x = Math.min(...boxes.map((b) => b.x));
  const y = Math.min(...boxes.map((b) => b.y));
  const right = Math.max(...boxes.map((b) => b.x + b.width));
  const bottom = Math.max(...boxes.map((b) => b.y + b.height));
  return { x, y, width: right - x, height: bottom - y };
}

/** The keys of boxes that overlap another box: their labels would cover each other, so they show only on hover or
 * selection. */
export function crowdedKeys(items: ReadonlyArray<{ key: string; box: Box }>): Set<string> {
  const crowded = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const a = items[i].box;
    for (let j = i + 1; j < items.length; j++) {
      const b = items[j].box;
      const overlapX = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
      const overlapY = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
      if (overlapX > 0 && overlapY > 0) {
        crowded.add(items[i].key);
        crowded.add(items[j].key);
      }
    }
  }
  return crowded;
}
