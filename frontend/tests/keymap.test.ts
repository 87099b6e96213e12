import { describe, expect, it } from "vitest";
import { clashes, keyOf, KEYMAPS, resolver, type Scope } from "../src/keyboard/keymap";
import { taxonomyClasses } from "./fixtures";

const shortcuts = taxonomyClasses().map((c) => c.shortcut);

describe("the keyboard map", () => {
  it("reads all 21 class shortcuts from the taxonomy", () => {
    expect(shortcuts).toEqual([
      "1",
      "2",
      "3",
      "4",
      "5",
      "6",
      "7",
      "8",
      "9",
      "0",
      "q",
      "w",
      "e",
      "r",
      "t",
      "y",
      "u",
      "i",
      "o",
      "p",
      "g",
    ]);
  });

  it.each(Object.keys(KEYMAPS) as Scope[])("has no key with two meanings on the %s page", (scope) => {
    expect(clashes(scope, shortcuts)).toEqual([]);
  });

  it("finds a clash when a binding reuses a class key", () => {
    KEYMAPS.review.push({ action: "broken", keys: ["w"], label: "test" });
    try {
      expect(clashes("review", shortcuts)).toEqual(["w: classify / broken"]);
    } finally {
      KEYMAPS.review.pop();
    }
  });

  it("sends every class key to the page's class action and keeps the help key global", () => {
    const actions = resolver("annotator", shortcuts);
    for (const key of shortcuts) expect(actions.get(key)).toBe("classify");
    expect(actions.get("?")).toBe("help");
    expect(actions.get("Shift+A")).toBe("acceptAll");
    expect(actions.get("a")).toBe("accept");
    expect(actions.get("Ctrl+Enter")).toBe("submit");
  });

  it("covers the annotator's main loop without a mouse", () => {
    const actions = new Set(KEYMAPS.annotator.map((b) => b.action));
    for (const needed of [
      "classify",
      "nextCell",
      "previousCell",
      "nextField",
      "previousField",
      "accept",
      "acceptAll",
      "toggleCountable",
      "delete",
      "newBox",
      "undo",
      "submit",
    ]) {
      expect(actions.has(needed), needed).toBe(true);
    }
  });
});

describe("keyOf", () => {
  const press = (
    key: string,
    modifiers: Partial<Record<"ctrlKey" | "metaKey" | "altKey" | "shiftKey", boolean>> = {},
  ) => keyOf({ key, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...modifiers });

  it("names letters in lower case and shifted letters explicitly", () => {
    expect(press("A")).toBe("a");
    expect(press("A", { shiftKey: true })).toBe("Shift+A");
  });

  it("leaves shifted symbols as the symbol they type", () => {
    expect(press("?", { shiftKey: true })).toBe("?");
    expect(press("]")).toBe("]");
  });

  it("prefixes Ctrl (or Cmd) and Alt, and Shift on named keys", () => {
    expect(press("z", { ctrlKey: true })).toBe("Ctrl+Z");
    expect(press("Z", { ctrlKey: true, shiftKey: true })).toBe("Ctrl+Shift+Z");
    expect(press("Enter", { metaKey: true })).toBe("Ctrl+Enter");
    expect(press("ArrowLeft", { altKey: true })).toBe("Alt+ArrowLeft");
    expect(press("ArrowLeft", { shiftKey: true })).toBe("Shift+ArrowLeft");
  });
});
