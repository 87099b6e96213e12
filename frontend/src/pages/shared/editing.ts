// Continuous saving into my own annotation set, as every page that changes cells uses it: the annotator (one
// field), the gallery and the review queue (many fields in passing).

import { annotationSets, cellWriter, ensureMySet } from "../../api/foundation";
import type { AnnotationSet, Cell, Me } from "../../api/shapes";
import { SetEditor } from "../../logic/setEditor";
import { showError, showInfo } from "../../ui/feedback";

export interface MySet {
  /** my set on the field; null: none yet (it is created with the first change) */
  set: AnnotationSet | null;
  cells: readonly Cell[];
  /** the set version the cells were read at (the ETag) */
  version: number | null;
}

/** An editor of my set on a field. `onStarted` runs once the set exists on the server (it moves the field along). */
export function mySetEditor(fieldId: number, me: Me, mine: MySet, onStarted?: () => void): SetEditor {
  return new SetEditor({
    setId: mine.set?.id ?? null,
    version: mine.version ?? mine.set?.version ?? 1,
    cells: mine.cells,
    writer: cellWriter,
    async ensureSet() {
      const set = await ensureMySet(fieldId, me);
      onStarted?.();
      const existing = set.cell_count ? await annotationSets.cells(set.id) : null;
      return { id: set.id, version: existing?.version ?? set.version, cells: existing?.cells };
    },
  });
}

/**
 * Saving while the page shows many fields: a set changed elsewhere (409) keeps both changes at once (the other
 * version with mine on top; the annotator's own page asks instead), and a refused or failed write is said once in
 * words. Returns what stops following the editor.
 */
export function saveUnattended(editor: SetEditor, fieldId: number, onChange?: () => void): () => void {
  let lastMessage = "";
  return editor.onChange(() => {
    if (editor.message && editor.message !== lastMessage && editor.state !== "offline")
      showError(new Error(`Field #${fieldId}: ${editor.message}`));
    lastMessage = editor.message;
    if (editor.conflict) {
      showInfo(`Field #${fieldId} was changed elsewhere; your changes are saved on top of that version.`);
      editor.keepMine();
    }
    onChange?.();
  });
}
