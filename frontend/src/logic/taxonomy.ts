// The 21 classes as the palette shows them: grouped by lineage in taxonomy order, each with its shortcut key.
// The classes come from the API (/api/v1/cell-classes), so ids, names and keys have one source: annotations/taxonomy.py.

import type { CellClass, Lineage } from "../api/shapes";

export const LINEAGE_ORDER: readonly Lineage[] = [
  "granulocytic",
  "erythroid",
  "lymphoid",
  "monocytic",
  "megakaryocytic",
  "other",
];

export const LINEAGE_COLOURS: Record<Lineage, string> = {
  granulocytic: "#e07a1f",
  erythroid: "#d6336c",
  lymphoid: "#1c7ed6",
  monocytic: "#2f9e44",
  megakaryocytic: "#7048e8",
  other: "#868e96",
};

export interface LineageGroup {
  lineage: Lineage;
  classes: CellClass[];
}

export function groupByLineage(classes: readonly CellClass[]): LineageGroup[] {
  return LINEAGE_ORDER.map((lineage) => ({
    lineage,
    classes: classes.filter((c) => c.lineage === lineage).sort((a, b) => a.id - b.id),
  })).filter((group) => group.classes.length > 0);
}

export class Taxonomy {
  readonly classes: readonly CellClass[];
  private readonly byId = new Map<number, CellClass>();
  private readonly byKey = new Map<string, CellClass>();

  constructor(classes: readonly CellClass[]) {
    this.classes = [...classes].sort((a, b) => a.id - b.id);
    for (const cls of this.classes) {
      this.byId.set(cls.id, cls);
      this.byKey.set(cls.shortcut.toLowerCase(), cls);
    }
  }

  get(id: number | null | undefined): CellClass | undefined {
    return id === null || id === undefined ? undefined : this.byId.get(id);
  }

  name(id: number | null | undefined): string {
    return this.get(id)?.name ?? "unclassified";
  }

  colour(id: number | null | undefined): string {
    const cls = this.get(id);
    return cls ? LINEAGE_COLOURS[cls.lineage] : "#fa5252";
  }

  byShortcut(key: string): CellClass | undefined {
    return this.byKey.get(key.toLowerCase());
  }

  shortcuts(): string[] {
    return this.classes.map((c) => c.shortcut.toLowerCase());
  }

  groups(): LineageGroup[] {
    return groupByLineage(this.classes);
  }
}
