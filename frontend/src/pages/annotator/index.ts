// The field annotator: the raw field with my boxes and the model's suggestions, the class palette, continuous
// saving with the version check, and submit. Everything in the main loop has a key (see keyboard/keymap.ts).
//
// data.ts loads, state.ts decides what shows, controller.ts acts, panel.ts / viewer.ts / conflict.ts draw; this
// module lays the page out, binds the keys and cleans up.

import type { Page } from "../../context";
import { h, words } from "../../ui/dom";
import { showError, showInfo } from "../../ui/feedback";
import { bindKeys } from "../../ui/keys";
import { AnnotatorController } from "./controller";
import { loadField } from "./data";

export const annotatorPage: Page = async (root, params, context) => {
  const fieldId = Number(params.id);
  const annotating = context.has("annotator");
  root.append(h("p", { class: "muted" }, `Loading field #${fieldId}…`));
  const [taxonomy, data] = await Promise.all([context.taxonomy(), loadField(fieldId, annotating, context.me.id)]);

  const viewerElement = h("div", {
    class: "viewer",
    id: "viewer",
    tabindex: "0",
    "aria-label": `field ${fieldId} image`,
  });
  const side = h("aside", { class: "side", "aria-label": "annotation tools" });
  const hint = h("div", { class: "viewer-hint" });
  root.replaceChildren(h("div", { class: "annotator" }, h("div", { class: "viewer-wrap" }, viewerElement, hint), side));
  root.classList.add("full");

  const annotator = new AnnotatorController(data, taxonomy, context.me, annotating, {
    viewer: viewerElement,
    side,
    hint,
  });
  const { editor, viewer, neighbours } = annotator;

  const unbindKeys = bindKeys("annotator", taxonomy, {
    classify: (key) => {
      const cls = taxonomy.byShortcut(key);
      if (cls) annotator.classify(cls.id);
    },
    nextCell: () => annotator.step(1),
    previousCell: () => annotator.step(-1),
    nextField: () => annotator.goField(neighbours.next),
    previousField: () => annotator.goField(neighbours.previous),
    accept: () => annotator.accept(),
    acceptAll: () => annotator.acceptAll(),
    toggleCountable: () => annotator.toggleCountable(),
    delete: () => annotator.remove(),
    newBox: () => annotator.newBox(),
    drawMode: () => annotator.toggleDrawing(),
    moveLeft: () => annotator.nudge("left", false),
    moveRight: () => annotator.nudge("right", false),
    moveUp: () => annotator.nudge("up", false),
    moveDown: () => annotator.nudge("down", false),
    fineLeft: () => annotator.nudge("left", true),
    fineRight: () => annotator.nudge("right", true),
    fineUp: () => annotator.nudge("up", true),
    fineDown: () => annotator.nudge("down", true),
    narrower: () => annotator.nudge("left", false, true),
    wider: () => annotator.nudge("right", false, true),
    shorter: () => annotator.nudge("up", false, true),
    taller: () => annotator.nudge("down", false, true),
    zoomCell: () => annotator.zoomToSelected(),
    zoomField: () => viewer.home(),
    zoomIn: () => viewer.zoomBy(1.4),
    zoomOut: () => viewer.zoomBy(1 / 1.4),
    toggleSuggestions: () => annotator.toggleSuggestions(),
    undo: () => annotator.undo(),
    saveNow: () => editor.retryNow(),
    submit: () => void annotator.submit(),
    escape: () => annotator.escape(),
  });

  const beforeUnload = (event: BeforeUnloadEvent): void => {
    if (editor.pendingCount > 0) event.preventDefault();
  };
  window.addEventListener("beforeunload", beforeUnload);
  const stopListening = editor.onChange(() => annotator.refresh());

  try {
    await viewer.ready;
  } catch (error) {
    showError(error);
  }
  annotator.refresh();
  viewerElement.dataset.ready = "1";
  if (annotator.state.readOnly && annotating)
    showInfo(`Field #${fieldId} is ${words(data.shown.set?.status ?? "submitted")}, so it can no longer be changed.`);

  return () => {
    unbindKeys();
    stopListening();
    window.removeEventListener("beforeunload", beforeUnload);
    // Queued writes still go out after leaving the page; only the view stops following them.
    editor.dispose();
    viewer.destroy();
    root.classList.remove("full");
  };
};
