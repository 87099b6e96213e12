// The gallery's selection, pure: the focused crop (keyboard), the anchor a range extends from (Shift), and the
// selected crops. Every gesture is a function from one selection to the next; the page paints the result.

import { moveFocus, range, type Direction, type GalleryGroup, type GalleryItem } from "../../logic/gallery";

export interface Selection {
  focus: string | null;
  anchor: string | null;
  selected: ReadonlySet<string>;
}

export const NOTHING: Selection = { focus: null, anchor: null, selected: new Set() };

/** Keep only what is still shown (after a change regrouped the crops). */
export function pruned(selection: Selection, shown: ReadonlySet<string>): Selection {
  return {
    ...selection,
    focus: selection.focus && shown.has(selection.focus) ? selection.focus : null,
    selected: new Set([...selection.selected].filter((key) => shown.has(key))),
  };
}

/** A click: alone it selects the crop; with Ctrl it adds or removes it; with Shift it selects the range to it. */
export function clicked(
  selection: Selection,
  key: string,
  modifiers: { toggle: boolean; extend: boolean },
  groups: readonly GalleryGroup[],
): Selection {
  if (modifiers.toggle) {
    const selected = new Set(selection.selected);
    if (!selected.delete(key)) selected.add(key);
    return { focus: key, anchor: key, selected };
  }
  if (modifiers.extend && selection.anchor)
    return { ...selection, focus: key, selected: new Set(range(groups, selection.anchor, key)) };
  return { focus: key, anchor: key, selected: new Set([key]) };
}

/** Focus a crop; `extend` (Shift+arrow) selects the range from the anchor to it. */
export function focused(
  selection: Selection,
  key: string | null,
  extend: boolean,
  groups: readonly GalleryGroup[],
): Selection {
  if (!key) return selection;
  if (extend && selection.anchor)
    return { ...selection, focus: key, selected: new Set(range(groups, selection.anchor, key)) };
  return { ...selection, focus: key, anchor: extend ? selection.anchor : key };
}

/** An arrow key: the focus moves (`columns` crops per row for up / down); with Shift the selection follows. */
export function moved(
  selection: Selection,
  direction: Direction,
  extend: boolean,
  groups: readonly GalleryGroup[],
  columns: number,
): Selection {
  const start = extend && !selection.anchor ? { ...selection, anchor: selection.focus } : selection;
  return focused(start, moveFocus(groups, start.focus, direction, columns), extend, groups);
}

/** Space: select or unselect the focused crop (without focus: focus the first crop). */
export function toggled(selection: Selection, groups: readonly GalleryGroup[], columns: number): Selection {
  const { focus } = selection;
  if (!focus) return focused(selection, moveFocus(groups, null, "right", columns), false, groups);
  const selected = new Set(selection.selected);
  if (!selected.delete(focus)) selected.add(focus);
  return { ...selection, anchor: focus, selected };
}

/** Ctrl+A: every crop of the focused crop's class group (or of the first group). */
export function groupSelected(selection: Selection, groups: readonly GalleryGroup[]): Selection {
  const group = groups.find((g) => g.items.some((item) => item.key === selection.focus)) ?? groups[0];
  return group ? { ...selection, selected: new Set(group.items.map((item) => item.key)) } : selection;
}

export function cleared(selection: Selection): Selection {
  return { ...selection, selected: new Set() };
}

/** A drag starts on a crop: it joins the selection unless it is part of it already. */
export function dragStarted(selection: Selection, key: string): Selection {
  return { ...selection, focus: key, selected: selection.selected.has(key) ? selection.selected : new Set([key]) };
}

/** A change acts on the selected crops, or on the focused one when none is selected. */
export function targets(selection: Selection, items: readonly GalleryItem[]): GalleryItem[] {
  const keys = selection.selected.size ? selection.selected : new Set(selection.focus ? [selection.focus] : []);
  return items.filter((item) => keys.has(item.key));
}

/** Crops whose key changed (a suggestion taken over becomes my cell) stay selected and focused under the new key. */
export function renamed(selection: Selection, renames: ReadonlyMap<string, string>): Selection {
  const rename = (key: string | null) => (key !== null ? (renames.get(key) ?? key) : null);
  return {
    focus: rename(selection.focus),
    anchor: rename(selection.anchor),
    selected: new Set([...selection.selected].map((key) => renames.get(key) ?? key)),
  };
}

/** `c` marks the chosen cells uncountable, or countable again when all of them are uncountable already. */
export function countableAfterToggle(chosen: readonly Pick<GalleryItem, "countable">[]): boolean {
  return chosen.length > 0 && chosen.every((item) => !item.countable);
}

/** The field a gallery key belongs to (keys are `${fieldId}:${cellKey}`). */
export function fieldOfKey(key: string): number {
  return Number(key.split(":")[0]);
}
