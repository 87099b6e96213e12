// The keyboard map of every page, in one place: the help overlay (?) prints it, the pages dispatch through it,
// and a unit test checks that no key means two things on one page (class shortcuts included).
//
// Class shortcuts come from the taxonomy (1-9, 0, q w e r t y u i o p g); every other binding uses keys
// outside that set.

export type Scope = "global" | "annotator" | "gallery" | "review" | "crosscheck";

export interface Binding {
  action: string;
  keys: string[];
  label: string;
}

/** Placeholder for "the shortcut key of any cell class" in a scope's map. */
export const CLASS_KEYS = "class keys";

const GLOBAL: Binding[] = [
  { action: "help", keys: ["?"], label: "show or hide this keyboard map" },
  { action: "escape", keys: ["Escape"], label: "close a dialog, cancel drawing, clear the selection" },
];

export const KEYMAPS: Record<Scope, Binding[]> = {
  global: GLOBAL,
  annotator: [
    {
      action: "classify",
      keys: [CLASS_KEYS],
      label: "give the selected cell that class (a suggestion is accepted with it)",
    },
    { action: "nextCell", keys: ["j"], label: "next cell (reading order; suggestions included)" },
    { action: "previousCell", keys: ["k"], label: "previous cell" },
    { action: "nextField", keys: ["]"], label: "next field" },
    { action: "previousField", keys: ["["], label: "previous field" },
    { action: "accept", keys: ["a"], label: "accept the selected suggestion as predicted" },
    { action: "acceptAll", keys: ["Shift+A"], label: "accept all open suggestions" },
    { action: "toggleCountable", keys: ["c"], label: "toggle countable / uncountable" },
    { action: "delete", keys: ["Delete", "Backspace"], label: "delete the selected box (or dismiss a suggestion)" },
    { action: "newBox", keys: ["n"], label: "new box at the centre of the view (then arrows to place it)" },
    { action: "drawMode", keys: ["b"], label: "draw boxes with the mouse (on / off)" },
    { action: "moveLeft", keys: ["ArrowLeft"], label: "move the selected box left (no selection: pan the view)" },
    { action: "moveRight", keys: ["ArrowRight"], label: "move right" },
    { action: "moveUp", keys: ["ArrowUp"], label: "move up" },
    { action: "moveDown", keys: ["ArrowDown"], label: "move down" },
    { action: "fineLeft", keys: ["Alt+ArrowLeft"], label: "move left by 1 px" },
    { action: "fineRight", keys: ["Alt+ArrowRight"], label: "move right by 1 px" },
    { action: "fineUp", keys: ["Alt+ArrowUp"], label: "move up by 1 px" },
    { action: "fineDown", keys: ["Alt+ArrowDown"], label: "move down by 1 px" },
    { action: "narrower", keys: ["Shift+ArrowLeft"], label: "make the selected box narrower" },
    { action: "wider", keys: ["Shift+ArrowRight"], label: "make it wider" },
    { action: "shorter", keys: ["Shift+ArrowUp"], label: "make it shorter" },
    { action: "taller", keys: ["Shift+ArrowDown"], label: "make it taller" },
    { action: "zoomCell", keys: ["z"], label: "zoom to the selected cell" },
    { action: "zoomField", keys: ["Shift+Z"], label: "show the whole field" },
    { action: "zoomIn", keys: ["+", "="], label: "zoom in" },
    { action: "zoomOut", keys: ["-"], label: "zoom out" },
    { action: "toggleSuggestions", keys: ["v"], label: "show / hide the model's suggestions" },
    { action: "undo", keys: ["Ctrl+Z"], label: "undo your last change (saved again at once)" },
    { action: "saveNow", keys: ["Ctrl+S"], label: "retry saving now (saving is continuous)" },
    { action: "submit", keys: ["Ctrl+Enter"], label: "submit the field (asks to confirm)" },
  ],
  gallery: [
    { action: "classify", keys: [CLASS_KEYS], label: "reclassify the selected cells" },
    { action: "focusLeft", keys: ["ArrowLeft"], label: "previous crop" },
    { action: "focusRight", keys: ["ArrowRight"], label: "next crop" },
    { action: "focusUp", keys: ["ArrowUp"], label: "crop above" },
    { action: "focusDown", keys: ["ArrowDown"], label: "crop below" },
    { action: "extendLeft", keys: ["Shift+ArrowLeft"], label: "extend the selection left" },
    { action: "extendRight", keys: ["Shift+ArrowRight"], label: "extend the selection right" },
    { action: "toggleSelect", keys: [" "], label: "select / unselect the focused crop (Space)" },
    { action: "selectGroup", keys: ["Ctrl+A"], label: "select every cell of the focused class" },
    { action: "toggleCountable", keys: ["c"], label: "mark the selected cells uncountable (again: countable)" },
    { action: "nextGroup", keys: ["]"], label: "next class group" },
    { action: "previousGroup", keys: ["["], label: "previous class group" },
    { action: "open", keys: ["Enter"], label: "open the focused cell in the field annotator" },
    { action: "undo", keys: ["Ctrl+Z"], label: "undo your last change" },
  ],
  review: [
    { action: "classify", keys: [CLASS_KEYS], label: "the cell is of that class" },
    { action: "top1", keys: ["a"], label: "accept the model's first choice" },
    { action: "top2", keys: ["s"], label: "take the second choice" },
    { action: "top3", keys: ["d"], label: "take the third choice" },
    { action: "uncountable", keys: ["c"], label: "uncountable (crushed, smudged, naked nucleus)" },
    { action: "notACell", keys: ["x"], label: "not a white cell: no cell is kept" },
    { action: "skip", keys: ["j"], label: "skip to the next cell" },
    { action: "back", keys: ["k"], label: "back to the previous cell" },
    { action: "undo", keys: ["Ctrl+Z"], label: "undo the last decision" },
  ],
  crosscheck: [
    { action: "nextConflict", keys: ["j"], label: "next conflict" },
    { action: "previousConflict", keys: ["k"], label: "previous conflict" },
    { action: "nextField", keys: ["]"], label: "next field with conflicts" },
    { action: "previousField", keys: ["["], label: "previous field with conflicts" },
    { action: "concede", keys: ["a"], label: "annotator: concede (take the other annotator's version)" },
    { action: "keep", keys: ["s"], label: "annotator: keep mine" },
    { action: "decideA", keys: ["h"], label: "adjudicator: decide for A's version (left)" },
    { action: "decideB", keys: ["l"], label: "adjudicator: decide for B's version (right)" },
    { action: "decideNone", keys: ["x"], label: "adjudicator: no cell here" },
    { action: "decideClass", keys: [CLASS_KEYS], label: "adjudicator: the box with that class" },
  ],
};

/** The normalised name of a key press: "a", "Shift+A", "Ctrl+Z", "Alt+ArrowLeft", "?", " ". */
export function keyOf(event: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "altKey" | "shiftKey">): string {
  const parts: string[] = [];
  if (event.ctrlKey || event.metaKey) parts.push("Ctrl");
  if (event.altKey) parts.push("Alt");
  let key = event.key;
  if (key.length === 1) {
    const isLetter = key.toLowerCase() !== key.toUpperCase();
    // A shifted symbol ("?", "!") already names itself; letters carry Shift explicitly, and are written in upper
    // case with any modifier ("Ctrl+Z"), in lower case alone ("z").
    if (isLetter) {
      if (event.shiftKey) parts.push("Shift");
      key = parts.length ? key.toUpperCase() : key.toLowerCase();
    }
  } else if (event.shiftKey && key !== "Shift") {
    parts.push("Shift");
  }
  parts.push(key);
  return parts.join("+");
}

/** key -> action for one page, class shortcuts resolved to "classify" (or the page's CLASS_KEYS action). */
export function resolver(scope: Scope, classShortcuts: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const binding of [...GLOBAL, ...(scope === "global" ? [] : KEYMAPS[scope])]) {
    for (const key of binding.keys) {
      if (key === CLASS_KEYS) for (const shortcut of classShortcuts) map.set(shortcut.toLowerCase(), binding.action);
      else map.set(key, binding.action);
    }
  }
  return map;
}

/** Keys bound to more than one action in a scope (global bindings and class shortcuts included). */
export function clashes(scope: Scope, classShortcuts: readonly string[]): string[] {
  const seen = new Map<string, string>();
  const found: string[] = [];
  for (const binding of [...GLOBAL, ...(scope === "global" ? [] : KEYMAPS[scope])]) {
    const keys = binding.keys.flatMap((key) =>
      key === CLASS_KEYS ? classShortcuts.map((s) => s.toLowerCase()) : [key],
    );
    for (const key of keys) {
      const previous = seen.get(key);
      if (previous !== undefined && previous !== binding.action) found.push(`${key}: ${previous} / ${binding.action}`);
      seen.set(key, binding.action);
    }
  }
  return found;
}

/** Whether a key press comes from typing into a form control (pages then leave it alone). */
export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  const type = (target as HTMLInputElement).type;
  return !["checkbox", "radio", "button", "submit", "range"].includes(type);
}
