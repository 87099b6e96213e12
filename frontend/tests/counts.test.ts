import { describe, expect, it } from "vitest";
import { differential, share } from "../src/logic/differential";
import { countableProbability, percent, topClasses } from "../src/logic/scores";
import { groupByLineage, Taxonomy } from "../src/logic/taxonomy";
import { suggestionOfReview } from "../src/api/reviewQueue";
import { ROUTES } from "../src/pages";
import { findRoute, isCurrentLink, matchRoute } from "../src/router";
import { cell, taxonomyClasses } from "./fixtures";

const classes = taxonomyClasses();

describe("live differential", () => {
  it("counts countable classified cells by class and lineage, blasts apart, the rest as excluded", () => {
    const d = differential(
      [
        { countable: true, cell_class: 11 }, // lymphoblast (blast, lymphoid)
        { countable: true, cell_class: 11 },
        { countable: true, cell_class: 12 }, // lymphocyte
        { countable: true, cell_class: 5 }, // neutrophilic segmented (granulocytic)
        { countable: false, cell_class: 11 }, // uncountable: not counted
        { countable: true, cell_class: null }, // unclassified: not counted
      ],
      classes,
    );
    expect(d.total).toBe(4);
    expect(d.blasts).toBe(2);
    expect(d.uncountable).toBe(1);
    expect(d.unclassified).toBe(1);
    expect(d.byClass.get(11)).toBe(2);
    expect(d.byLineage.get("lymphoid")).toBe(3);
    expect(d.byLineage.get("granulocytic")).toBe(1);
    expect(d.byLineage.get("erythroid")).toBe(0);
    expect(share(d.blasts, d.total)).toBe(0.5);
    expect(share(3, 0)).toBe(0);
  });
});

describe("scores", () => {
  it("takes the top three of the ensemble probabilities, ties to the lower class id", () => {
    const probabilities = new Array(21).fill(0);
    probabilities[4] = 0.5;
    probabilities[2] = 0.2;
    probabilities[9] = 0.2;
    probabilities[20] = 0.1;
    expect(topClasses(cell({ scores: { probabilities } }), 3)).toEqual([
      { classId: 4, probability: 0.5 },
      { classId: 2, probability: 0.2 },
      { classId: 9, probability: 0.2 },
    ]);
  });

  it("falls back on the predicted class and its confidence without probabilities", () => {
    expect(topClasses(cell({ scores: {}, cell_class: 3, confidence: 0.7 }))).toEqual([
      { classId: 3, probability: 0.7 },
    ]);
    expect(topClasses(cell({ scores: { probabilities: ["x"] }, cell_class: null }))).toEqual([]);
  });

  it("reads P(countable) when the prediction stored it", () => {
    expect(countableProbability({ p_countable: 0.87 })).toBe(0.87);
    expect(countableProbability({ probabilities: [1] })).toBeNull();
  });

  it("writes percentages", () => {
    expect(percent(0.625)).toBe("63%");
    expect(percent(0.625, 1)).toBe("62.5%");
    expect(percent(null)).toBe("–");
  });
});

describe("taxonomy", () => {
  const taxonomy = new Taxonomy(classes);

  it("groups the 21 classes into the six lineages in design order", () => {
    expect(groupByLineage(classes).map((g) => [g.lineage, g.classes.length])).toEqual([
      ["granulocytic", 7],
      ["erythroid", 4],
      ["lymphoid", 3],
      ["monocytic", 3],
      ["megakaryocytic", 2],
      ["other", 2],
    ]);
  });

  it("finds a class by its key, in either case", () => {
    expect(taxonomy.byShortcut("w")?.name).toBe("lymphoblast");
    expect(taxonomy.byShortcut("W")?.name).toBe("lymphoblast");
    expect(taxonomy.byShortcut("0")?.name).toBe("polychromatic erythroblast");
    expect(taxonomy.byShortcut("z")).toBeUndefined();
    expect(taxonomy.name(null)).toBe("unclassified");
  });
});

describe("routes", () => {
  it("matches patterns with parameters and nothing else", () => {
    expect(matchRoute("/fields/:id", "/fields/12")).toEqual({ id: "12" });
    expect(matchRoute("/fields/:id", "/fields/12/")).toEqual({ id: "12" });
    expect(matchRoute("/gallery/:scope/:id", "/gallery/case/3")).toEqual({ scope: "case", id: "3" });
    expect(matchRoute("/", "/")).toEqual({});
    expect(matchRoute("/fields/:id", "/fields")).toBeNull();
    expect(matchRoute("/cases", "/cases/4")).toBeNull();
  });

  it("finds each address's page in the route table, and no route twice", () => {
    const path = (address: string) => findRoute(ROUTES, address)?.[0].path;
    expect(path("/crosscheck/5")).toBe("/crosscheck/:field");
    expect(path("/crosscheck")).toBe("/crosscheck");
    expect(path("/fields/12")).toBe("/fields/:id");
    expect(path("/nowhere")).toBeUndefined();
    expect(new Set(ROUTES.map((r) => r.path)).size).toBe(ROUTES.length);
  });

  it("builds the navigation bar from the route table, in its order", () => {
    expect(ROUTES.flatMap((r) => (r.nav ? [r.nav.label] : []))).toEqual([
      "Home",
      "Intake",
      "Assignment",
      "Review queue",
      "Cross-check",
      "Cases",
      "Models",
      "Exports",
      "Users",
    ]);
  });

  it("marks the current link: its own address and those under it, the worklist for fields too", () => {
    expect(isCurrentLink("/", ["/fields"], "/")).toBe(true);
    expect(isCurrentLink("/", ["/fields"], "/fields/3")).toBe(true);
    expect(isCurrentLink("/", ["/fields"], "/cases")).toBe(false);
    expect(isCurrentLink("/cases", [], "/cases/4")).toBe(true);
    expect(isCurrentLink("/cases", [], "/cases")).toBe(true);
    expect(isCurrentLink("/crosscheck", [], "/review")).toBe(false);
  });
});

describe("review-queue cells", () => {
  it("become cells with the predicted class, the top probability as confidence and the stored margin", () => {
    const probabilities = new Array(21).fill(0.01);
    probabilities[11] = 0.5;
    probabilities[12] = 0.31;
    const cell = suggestionOfReview({
      id: 9,
      field: 3,
      field_width: 640,
      field_height: 480,
      x: 1,
      y: 2,
      width: 30,
      height: 40,
      predicted_class: 11,
      countable: true,
      p_countable: 0.8,
      detector_score: 0.9,
      probabilities,
      uncertainty: { margin: 0.19, entropy: 1.2 },
      top3: [],
      model_version: 4,
    });
    expect(cell).toMatchObject({
      id: 9,
      cell_class: 11,
      confidence: 0.5,
      margin: 0.19,
      entropy: 1.2,
      detector_score: 0.9,
    });
    expect(topClasses(cell, 2).map((c) => c.classId)).toEqual([11, 12]);
    expect(countableProbability(cell.scores)).toBe(0.8);
  });
});
