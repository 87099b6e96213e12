// Test data: the real taxonomy, read from annotations/taxonomy.py so the UI's tests follow the server's list.

import { readFileSync } from "node:fs";
import { fileURLToPath, URL as NodeURL } from "node:url";
import type { Cell, CellClass, Lineage } from "../src/api/shapes";
import type { LocalCell } from "../src/logic/edits";

const TAXONOMY_PY = fileURLToPath(new NodeURL("../../annotations/taxonomy.py", import.meta.url));

export function taxonomyClasses(): CellClass[] {
  const source = readFileSync(TAXONOMY_PY, "utf-8");
  const pattern = /CellClassSpec\((\d+), "([^"]+)", Lineage\.(\w+), (True|False), "(.)"\)/g;
  return [...source.matchAll(pattern)].map((m) => ({
    id: Number(m[1]),
    name: m[2],
    lineage: m[3].toLowerCase() as Lineage,
    is_blast: m[4] === "True",
    shortcut: m[5],
  }));
}

export function cell(overrides: Partial<Cell> = {}): Cell {
  return {
    id: 1,
    annotation_set: 1,
    x: 10,
    y: 10,
    width: 20,
    height: 20,
    countable: true,
    cell_class: null,
    scores: {},
    detector_score: null,
    confidence: null,
    margin: null,
    entropy: null,
    mutual_information: null,
    source_cell: null,
    review_outcome: "",
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
    ...overrides,
  };
}

/** One of my cells as the editor shows it (a lymphocyte at the origin unless told otherwise). */
export function localCell(key: string, overrides: Partial<LocalCell> = {}): LocalCell {
  return {
    key,
    x: 0,
    y: 0,
    width: 20,
    height: 20,
    countable: true,
    cell_class: 12,
    source_cell: null,
    ...overrides,
  };
}
