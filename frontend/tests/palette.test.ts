// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import { Taxonomy } from "../src/logic/taxonomy";
import { classPalette } from "../src/ui/palette";
import { taxonomyClasses } from "./fixtures";

const taxonomy = new Taxonomy(taxonomyClasses());

describe("the class palette", () => {
  it("groups the classes by lineage with their keys, and picks a class on click", () => {
    const onPick = vi.fn();
    const palette = classPalette(taxonomy, { onPick, active: 12, counts: new Map([[12, 3]]) });
    const lineages = [...palette.querySelectorAll(".lineage-name")].map((e) => e.textContent);
    expect(lineages).toEqual(["granulocytic", "erythroid", "lymphoid", "monocytic", "megakaryocytic", "other"]);
    const buttons = palette.querySelectorAll<HTMLButtonElement>(".class-button");
    expect(buttons).toHaveLength(21);
    const lymphocyte = palette.querySelector<HTMLButtonElement>(".class-button[data-class='12']")!;
    expect(lymphocyte.classList.contains("active")).toBe(true);
    expect(lymphocyte.querySelector("kbd")?.textContent).toBe("e");
    expect(lymphocyte.querySelector(".count")?.textContent).toBe("3");
    expect(palette.querySelector(".class-button[data-class='11'] sup")?.textContent).toBe("blast");
    lymphocyte.click();
    expect(onPick).toHaveBeenCalledWith(12);
  });

  it("is a legend without buttons when nothing is picked (the keyboard map)", () => {
    const legend = classPalette(taxonomy);
    expect(legend.classList.contains("legend")).toBe(true);
    expect(legend.querySelectorAll("button")).toHaveLength(0);
    expect(legend.querySelectorAll(".class-entry kbd")).toHaveLength(21);
  });

  it("disables every class on a read-only page", () => {
    const palette = classPalette(taxonomy, { onPick: () => undefined, disabled: true, variant: "palette-drop" });
    expect(palette.classList.contains("palette-drop")).toBe(true);
    expect([...palette.querySelectorAll<HTMLButtonElement>("button")].every((b) => b.disabled)).toBe(true);
  });
});
