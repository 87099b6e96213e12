// Reading a prediction's scores: the 21 class probabilities (ensemble average) and P(countable).

import type { Cell, Scores } from "../api/shapes";

// The inference app stores the ensemble average under "probabilities"; older or imported predictions may use
// another of these names.
const PROBABILITY_KEYS = ["probabilities", "class_probabilities", "probs", "ensemble"];
const COUNTABLE_KEYS = ["p_countable", "countable_probability"];

export function classProbabilities(scores: Scores | unknown[] | null | undefined): number[] | null {
  if (!scores) return null;
  if (Array.isArray(scores)) return isNumberList(scores) ? scores : null;
  for (const key of PROBABILITY_KEYS) {
    const value = scores[key];
    if (Array.isArray(value) && isNumberList(value)) return value;
  }
  return null;
}

export function countableProbability(scores: Scores | null | undefined): number | null {
  if (!scores || Array.isArray(scores)) return null;
  for (const key of COUNTABLE_KEYS) {
    const value = scores[key];
    if (typeof value === "number" && Number.isFinite(value)) return value;
  }
  return null;
}

function isNumberList(values: unknown[]): values is number[] {
  return values.length > 0 && values.every((v) => typeof v === "number" && Number.isFinite(v));
}

export interface Choice {
  classId: number;
  probability: number;
}

/** The k most probable classes, best first; ties keep the lower class id first. */
export function topClasses(cell: Pick<Cell, "scores" | "cell_class" | "confidence">, k = 3): Choice[] {
  const probabilities = classProbabilities(cell.scores);
  if (!probabilities) {
    // Without the full distribution, the predicted class and its confidence are all there is to show.
    return cell.cell_class === null ? [] : [{ classId: cell.cell_class, probability: cell.confidence ?? Number.NaN }];
  }
  return probabilities
    .map((probability, classId) => ({ classId, probability }))
    .sort((a, b) => b.probability - a.probability || a.classId - b.classId)
    .slice(0, k);
}

/** "62%" (or "–" when unknown). */
export function percent(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return `${(value * 100).toFixed(digits)}%`;
}
