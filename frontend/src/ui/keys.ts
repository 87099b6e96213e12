// Page keyboard handling: one capture-phase listener per page (so the viewer and the drawing library never see a
// key the page uses), and the help overlay (?) that prints the page's map.

import { isTyping, KEYMAPS, keyOf, resolver, CLASS_KEYS, type Scope } from "../keyboard/keymap";
import type { Taxonomy } from "../logic/taxonomy";
import { h } from "./dom";
import { dialogOpen } from "./feedback";
import { classPalette } from "./palette";

export type KeyHandlers = Partial<Record<string, (key: string, event: KeyboardEvent) => void>>;

let overlay: HTMLElement | null = null;

export function bindKeys(scope: Scope, taxonomy: Taxonomy | null, handlers: KeyHandlers): () => void {
  const actions = resolver(scope, taxonomy?.shortcuts() ?? []);
  const onKey = (event: KeyboardEvent): void => {
    if (event.defaultPrevented || dialogOpen() || isTyping(event.target)) return;
    const key = keyOf(event);
    const action = actions.get(key);
    if (action === "help") {
      toggleHelp(scope, taxonomy);
    } else if (action === "escape" && overlay) {
      toggleHelp(scope, taxonomy);
    } else if (action && handlers[action]) {
      handlers[action]?.(key, event);
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  };
  window.addEventListener("keydown", onKey, true);
  return () => {
    window.removeEventListener("keydown", onKey, true);
    overlay?.remove();
    overlay = null;
  };
}

export function toggleHelp(scope: Scope, taxonomy: Taxonomy | null): void {
  if (overlay) {
    overlay.remove();
    overlay = null;
    return;
  }
  overlay = helpOverlay(scope, taxonomy);
  document.body.append(overlay);
}

function keyLabel(key: string): string {
  return key === " " ? "Space" : key;
}

function helpOverlay(scope: Scope, taxonomy: Taxonomy | null): HTMLElement {
  const bindings = [...(scope === "global" ? [] : KEYMAPS[scope]), ...KEYMAPS.global];
  const rows = bindings.map((b) =>
    h(
      "tr",
      {},
      h(
        "td",
        {},
        b.keys.map((k) => (k === CLASS_KEYS ? h("em", {}, "class key") : h("kbd", {}, keyLabel(k)))),
      ),
      h("td", {}, b.label),
    ),
  );
  const classes =
    taxonomy && bindings.some((b) => b.keys.includes(CLASS_KEYS))
      ? h("div", { class: "help-classes" }, h("h3", {}, "Class keys"), classPalette(taxonomy))
      : null;
  const close = h("button", { class: "close", "aria-label": "close" }, "×");
  const panel = h(
    "div",
    { class: "help", role: "dialog", "aria-label": "Keyboard map" },
    close,
    h("h2", {}, "Keyboard map"),
    h("div", { class: "help-columns" }, h("table", {}, h("tbody", {}, rows)), classes),
  );
  close.addEventListener("click", () => toggleHelp(scope, taxonomy));
  return panel;
}
