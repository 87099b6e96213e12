// The 409 dialog: what the other change did, what of mine is not saved, and the choice. The field behind it already
// shows both (the other change in cyan, mine in pink) so the user decides looking at the boxes.

import type { Op } from "../../logic/edits";
import type { Conflict } from "../../logic/setEditor";
import type { Taxonomy } from "../../logic/taxonomy";
import { h } from "../../ui/dom";
import { dialog } from "../../ui/feedback";

export type ConflictChoice = "keep" | "discard" | "";

function describeOp(op: Op, taxonomy: Taxonomy): string {
  if (op.kind === "create")
    return `new box${op.data.cell_class !== null ? ` (${taxonomy.name(op.data.cell_class)})` : ""}`;
  if (op.kind === "accept") return `accepted a suggestion (${taxonomy.name(op.data.cell_class)})`;
  if (op.kind === "delete") return "deleted a box";
  const parts: string[] = [];
  if (op.changes.cell_class !== undefined) parts.push(`class → ${taxonomy.name(op.changes.cell_class)}`);
  if (op.changes.countable !== undefined) parts.push(op.changes.countable ? "countable" : "uncountable");
  if (op.changes.x !== undefined || op.changes.width !== undefined) parts.push("box moved or resized");
  return parts.join(", ") || "changed a box";
}

export function showConflict(conflict: Conflict, taxonomy: Taxonomy): Promise<ConflictChoice> {
  const { theirs } = conflict;
  const theirLines = [
    ...theirs.added.map((c) => `added a box (${taxonomy.name(c.cell_class)})`),
    ...theirs.removed.map((c) => `deleted a box (${taxonomy.name(c.cell_class)})`),
    ...theirs.changed.map(
      (c) =>
        `changed ${c.attributes.join(", ")} of a ${taxonomy.name(c.before.cell_class)} box${c.attributes.includes("cell_class") ? ` → ${taxonomy.name(c.after.cell_class)}` : ""}`,
    ),
  ];
  const body = h(
    "div",
    { class: "conflict-body" },
    h("p", {}, conflict.message),
    h("h3", {}, h("span", { class: "swatch theirs" }), `The other change (now version ${conflict.serverVersion})`),
    h(
      "ul",
      { class: "theirs" },
      theirLines.length ? theirLines.map((line) => h("li", {}, line)) : h("li", {}, "no visible difference"),
    ),
    h("h3", {}, h("span", { class: "swatch pending" }), "Your unsaved changes"),
    h(
      "ul",
      { class: "mine" },
      conflict.mine.map((op) => h("li", {}, describeOp(op, taxonomy))),
    ),
    conflict.notes.length
      ? h(
          "ul",
          { class: "notes" },
          conflict.notes.map((note) => h("li", {}, note)),
        )
      : null,
    h(
      "p",
      { class: "muted small" },
      "The field shows both. Keeping both saves your changes on top of the other version.",
    ),
  );
  return dialog(
    "This set was changed elsewhere",
    body,
    [
      { label: "Discard mine", value: "discard", key: "d" },
      { label: "Keep both (save mine on top)", value: "keep", key: "Enter", primary: true },
    ],
    "conflict",
  ) as Promise<ConflictChoice>;
}
