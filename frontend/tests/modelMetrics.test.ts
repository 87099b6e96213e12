import { describe, expect, it } from "vitest";
import { epochRows, noValidation, overallRows, perClassRows } from "../src/logic/modelMetrics";

const metrics = {
  accuracy: 0.8125,
  macro_f1: 0.5,
  ece: null,
  per_class: {
    "12": { name: "lymphocyte", precision: 0.9, recall: 0.75, f1: 0.8181, support: 12 },
    "5": { name: "neutrophilic segmented", precision: 1, recall: 1, f1: 1, support: 4 },
  },
  confusion_matrix: { labels: [5, 12], matrix: [] },
};

describe("model metrics as tables", () => {
  it("keeps the overall scalars and leaves the nested objects to their own tables", () => {
    expect(overallRows(metrics)).toEqual([
      ["accuracy", "0.813"],
      ["macro f1", "0.500"],
      ["ece", "–"],
    ]);
  });

  it("lists one row per class, by class id, with its support", () => {
    expect(perClassRows(metrics, String)).toEqual([
      { classId: 5, name: "neutrophilic segmented", values: ["1", "1", "1", "4"] },
      { classId: 12, name: "lymphocyte", values: ["0.900", "0.750", "0.818", "12"] },
    ]);
  });

  it("reads the learning curve and says when no epoch was validated", () => {
    const rows = epochRows([
      { epoch: 1, member: null, train_loss: 1.5, val_metric: null },
      { epoch: 2, member: null, train_loss: 1.25, val_metric: null },
    ]);
    expect(rows[1]).toEqual({ epoch: 2, member: "", trainLoss: "1.250", val: "–" });
    expect(noValidation(rows)).toBe(true);
    expect(noValidation(epochRows([{ epoch: 1, train_loss: 1, val_metric: 0.5 }]))).toBe(false);
  });
});
