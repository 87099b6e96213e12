// A model version's metrics as tables a reader can follow: the overall scalars, one row per class with its
// support, and the learning curve per epoch. Pure: the Models page draws them.

export type MetricValue = string;

function shown(value: unknown): MetricValue {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (typeof value === "string" || typeof value === "boolean") return String(value);
  return "–";
}

/** Top-level scalar metrics ("accuracy", "macro_f1", "support", ...), in the stored order. */
export function overallRows(metrics: Record<string, unknown>): Array<[string, MetricValue]> {
  return Object.entries(metrics)
    .filter(([, value]) => value === null || ["number", "string", "boolean"].includes(typeof value))
    .map(([name, value]) => [name.replace(/_/g, " "), shown(value)]);
}

export const PER_CLASS_COLUMNS = ["precision", "recall", "f1", "support"] as const;

export interface ClassRow {
  classId: number;
  name: string;
  values: MetricValue[];
}

/** One row per class of `metrics.per_class` ({"5": {name, precision, recall, f1, support}}), by class id. */
export function perClassRows(metrics: Record<string, unknown>, names: (id: number) => string): ClassRow[] {
  const perClass = metrics.per_class;
  if (!perClass || typeof perClass !== "object") return [];
  return Object.entries(perClass as Record<string, Record<string, unknown>>)
    .map(([id, row]) => ({
      classId: Number(id),
      name: typeof row.name === "string" ? row.name : names(Number(id)),
      values: PER_CLASS_COLUMNS.map((column) => shown(row[column])),
    }))
    .sort((a, b) => a.classId - b.classId);
}

export interface EpochRow {
  epoch: number;
  member: string;
  trainLoss: MetricValue;
  val: MetricValue;
}

/** The learning curve: per epoch (and ensemble member) the training loss and the validation metric. */
export function epochRows(history: unknown): EpochRow[] {
  if (!Array.isArray(history)) return [];
  return history.map((row: Record<string, unknown>) => ({
    epoch: Number(row.epoch),
    member: row.member === null || row.member === undefined ? "" : String(row.member),
    trainLoss: shown(row.train_loss),
    val: shown(row.val_metric),
  }));
}

/** Why the validation column is empty: the snapshot had no field of a patient in the `val` split. */
export function noValidation(rows: readonly EpochRow[]): boolean {
  return rows.length > 0 && rows.every((row) => row.val === "–");
}
