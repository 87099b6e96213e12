// The live differential count of the gallery: countable, classified cells per class, lineage totals and the blast
// share. The case report shows the server's count (with confidence intervals); this one follows the user's edits.

import type { CellClass, Lineage } from "../api/shapes";
import { LINEAGE_ORDER } from "./taxonomy";

export interface CountedCell {
  countable: boolean;
  cell_class: number | null;
}

export interface Differential {
  total: number;
  uncountable: number;
  unclassified: number;
  byClass: Map<number, number>;
  byLineage: Map<Lineage, number>;
  blasts: number;
}

export function differential(cells: readonly CountedCell[], classes: readonly CellClass[]): Differential {
  const classById = new Map(classes.map((c) => [c.id, c]));
  const byClass = new Map<number, number>();
  const byLineage = new Map<Lineage, number>(LINEAGE_ORDER.map((lineage) => [lineage, 0]));
  let total = 0;
  let uncountable = 0;
  let unclassified = 0;
  let blasts = 0;
  for (const cell of cells) {
    if (!cell.countable) {
      uncountable += 1;
      continue;
    }
    const cls = cell.cell_class === null ? undefined : classById.get(cell.cell_class);
    if (!cls) {
      unclassified += 1;
      continue;
    }
    total += 1;
    byClass.set(cls.id, (byClass.get(cls.id) ?? 0) + 1);
    byLineage.set(cls.lineage, (byLineage.get(cls.lineage) ?? 0) + 1);
    if (cls.is_blast) blasts += 1;
  }
  return { total, uncountable, unclassified, byClass, byLineage, blasts };
}

/** Share of the counted cells, 0 when nothing is counted. */
export function share(count: number, total: number): number {
  return total > 0 ? count / total : 0;
}
