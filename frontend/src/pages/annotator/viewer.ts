// The field viewer: OpenSeadragon for zoom and pan, Annotorious for drawing, moving, resizing and selecting
// boxes, and OpenSeadragon overlays for the class / confidence labels. The page owns the data; this module only
// shows `ViewItem`s and reports what the user did to them.

import {
  createOSDAnnotator,
  ShapeType,
  UserSelectAction,
  type ImageAnnotation,
  type OpenSeadragonAnnotator,
  type Rectangle,
} from "@annotorious/openseadragon";
import "@annotorious/openseadragon/annotorious-openseadragon.css";
import OpenSeadragon from "openseadragon";
import type { Box } from "../../api/shapes";
import { crowdedKeys, sameBox } from "../../logic/geometry";

export type ItemKind = "mine" | "suggestion";

export interface ViewItem {
  key: string;
  kind: ItemKind;
  box: Box;
  label: string;
  colour: string;
  /** unsaved (mine) or part of the other change during a conflict */
  emphasis: "none" | "pending" | "theirs";
  editable: boolean;
}

export interface ViewerEvents {
  created(key: string, box: Box): void;
  moved(key: string, box: Box): void;
  deleted(key: string): void;
  selected(key: string | null): void;
}

const EMPHASIS_COLOURS = { pending: "#e64980", theirs: "#15aabf" } as const;

function toAnnotation(item: ViewItem): ImageAnnotation {
  const { x, y, width: w, height: h } = item.box;
  return {
    id: item.key,
    bodies: [],
    target: {
      annotation: item.key,
      selector: {
        type: ShapeType.RECTANGLE,
        geometry: { x, y, w, h, bounds: { minX: x, minY: y, maxX: x + w, maxY: y + h } },
      } as Rectangle,
    },
  };
}

export function boxOf(annotation: ImageAnnotation): Box {
  const bounds = annotation.target.selector.geometry.bounds;
  return { x: bounds.minX, y: bounds.minY, width: bounds.maxX - bounds.minX, height: bounds.maxY - bounds.minY };
}

export class FieldViewer {
  readonly viewer: OpenSeadragon.Viewer;
  readonly ready: Promise<void>;
  private readonly annotator: OpenSeadragonAnnotator;
  private items = new Map<string, ViewItem>();
  private readonly labels = new Map<string, HTMLElement>();
  /** boxes overlapping another: their labels show only while hovered or selected */
  private crowded = new Set<string>();
  private hoveredKey: string | null = null;
  private drawing = false;
  private selectedKey: string | null = null;

  constructor(
    element: HTMLElement,
    imageUrl: string,
    private readonly events: ViewerEvents,
  ) {
    this.viewer = OpenSeadragon({
      element,
      tileSources: { type: "image", url: imageUrl, buildPyramid: false },
      // One untiled image: the 2D canvas draws it directly. The WebGL drawer copied each redraw (a selection, a label
      // moved) onto a 2D canvas; without a GPU the UI benchmark measured that at hundreds of ms per key press.
      drawer: "canvas",
      showNavigationControl: false,
      // The page's own keyboard map drives the viewer (zoom, pan); OpenSeadragon's keys would clash with it.
      keyboardNavEnabled: false,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
      animationTime: 0.25,
      maxZoomPixelRatio: 6,
      visibilityRatio: 0.5,
      crossOriginPolicy: false,
      loadTilesWithAjax: false,
    } as OpenSeadragon.Options);
    this.annotator = createOSDAnnotator(this.viewer, {
      drawingEnabled: false,
      drawingMode: "drag",
      autoSave: true,
      userSelectAction: (annotation: ImageAnnotation) =>
        this.items.get(annotation.id)?.editable ? UserSelectAction.EDIT : UserSelectAction.SELECT,
      style: (annotation: ImageAnnotation, state?: { selected?: boolean; hovered?: boolean }) =>
        this.styleOf(annotation.id, state),
    });
    this.annotator.setDrawingTool("rectangle");
    this.annotator.on("createAnnotation", (annotation) => {
      this.items.set(annotation.id, {
        key: annotation.id,
        kind: "mine",
        box: boxOf(annotation),
        label: "",
        colour: "#fa5252",
        emphasis: "pending",
        editable: true,
      });
      this.events.created(annotation.id, boxOf(annotation));
    });
    this.annotator.on("updateAnnotation", (annotation) => {
      const item = this.items.get(annotation.id);
      if (!item?.editable) return;
      item.box = boxOf(annotation);
      this.placeLabel(item);
      this.events.moved(annotation.id, item.box);
    });
    this.annotator.on("deleteAnnotation", (annotation) => {
      if (this.items.get(annotation.id)?.editable) this.events.deleted(annotation.id);
    });
    this.annotator.on("selectionChanged", (selected) => {
      this.selectedKey = selected[0]?.id ?? null;
      this.revealLabels();
      this.events.selected(this.selectedKey);
    });
    const hover = this.annotator as unknown as {
      on(event: "mouseEnterAnnotation" | "mouseLeaveAnnotation", handler: (annotation: { id: string }) => void): void;
    };
    hover.on("mouseEnterAnnotation", (annotation) => {
      this.hoveredKey = annotation.id;
      this.revealLabels();
    });
    hover.on("mouseLeaveAnnotation", (annotation) => {
      if (this.hoveredKey === annotation.id) this.hoveredKey = null;
      this.revealLabels();
    });
    this.ready = new Promise((resolve, reject) => {
      this.viewer.addOnceHandler("open", () => resolve());
      this.viewer.addOnceHandler("open-failed", (event) =>
        reject(
          new Error(
            `The field image could not be opened: ${(event as { message?: string }).message ?? "unknown error"}`,
          ),
        ),
      );
    });
  }

  private styleOf(key: string, state?: { selected?: boolean; hovered?: boolean }) {
    const item = this.items.get(key);
    if (!item) return { stroke: "#fa5252" as const, strokeWidth: 2 };
    const colour = (item.emphasis === "none" ? item.colour : EMPHASIS_COLOURS[item.emphasis]) as `#${string}`;
    const selected = state?.selected || key === this.selectedKey;
    return {
      stroke: colour,
      strokeWidth: selected ? 4 : item.kind === "suggestion" ? 1.5 : 2.5,
      fill: colour,
      fillOpacity: selected ? 0.22 : item.kind === "suggestion" ? 0.04 : 0.08,
    };
  }

  /** Show exactly these items (added, moved, restyled or removed as needed). */
  setItems(items: readonly ViewItem[]): void {
    const next = new Map(items.map((item) => [item.key, item]));
    for (const key of this.items.keys()) {
      if (!next.has(key)) {
        this.annotator.removeAnnotation(key);
        this.removeLabel(key);
      }
    }
    const current = new Map(this.annotator.getAnnotations().map((a) => [a.id, a]));
    const previous = this.items;
    this.items = next;
    let restyle = false;
    this.crowded = crowdedKeys(items);
    for (const item of items) {
      const shown = current.get(item.key);
      if (!shown) this.annotator.addAnnotation(toAnnotation(item));
      else if (!sameBox(boxOf(shown), item.box)) this.annotator.updateAnnotation(toAnnotation(item));
      const before = previous.get(item.key);
      if (!before || before.colour !== item.colour || before.emphasis !== item.emphasis || before.kind !== item.kind)
        restyle = true;
      this.placeLabel(item);
    }
    if (restyle)
      this.annotator.setStyle((annotation: ImageAnnotation, state?: { selected?: boolean }) =>
        this.styleOf(annotation.id, state),
      );
  }

  private placeLabel(item: ViewItem): void {
    let label = this.labels.get(item.key);
    const location = this.viewer.viewport.imageToViewportCoordinates(item.box.x, item.box.y);
    if (!label) {
      label = document.createElement("div");
      label.dataset.key = item.key;
      this.labels.set(item.key, label);
      this.viewer.addOverlay({
        element: label,
        location,
        placement: OpenSeadragon.Placement.BOTTOM_LEFT,
        checkResize: false,
      } as OpenSeadragon.OverlayOptions);
    } else {
      this.viewer.updateOverlay(label, location, OpenSeadragon.Placement.BOTTOM_LEFT);
    }
    label.className = `box-label ${item.kind} ${item.emphasis !== "none" ? item.emphasis : ""}`;
    label.classList.toggle("crowded", this.crowded.has(item.key));
    label.classList.toggle("revealed", item.key === this.selectedKey || item.key === this.hoveredKey);
    label.style.setProperty("--colour", item.emphasis === "none" ? item.colour : EMPHASIS_COLOURS[item.emphasis]);
    label.textContent = item.label;
  }

  /** Show the labels of the selected and the hovered box even where boxes overlap. */
  private revealLabels(): void {
    for (const [key, label] of this.labels)
      label.classList.toggle("revealed", key === this.selectedKey || key === this.hoveredKey);
  }

  private removeLabel(key: string): void {
    const label = this.labels.get(key);
    if (label) this.viewer.removeOverlay(label);
    this.labels.delete(key);
  }

  select(key: string | null): void {
    this.selectedKey = key;
    this.revealLabels();
    if (key === null) this.annotator.cancelSelected();
    else this.annotator.setSelected(key, this.items.get(key)?.editable ?? false);
    this.events.selected(key);
  }

  get selected(): string | null {
    return this.selectedKey;
  }

  setDrawing(on: boolean): void {
    this.drawing = on;
    this.annotator.setDrawingEnabled(on);
    this.viewer.element.classList.toggle("drawing", on);
  }

  get isDrawing(): boolean {
    return this.drawing;
  }

  /** The image point at the centre of the view. */
  centre(): { x: number; y: number } {
    const point = this.viewer.viewport.viewportToImageCoordinates(this.viewer.viewport.getCenter(true));
    return { x: point.x, y: point.y };
  }

  zoomTo(box: Box, padding = 1.5): void {
    const side = Math.max(box.width, box.height) * padding;
    const rect = this.viewer.viewport.imageToViewportRectangle(
      box.x + box.width / 2 - side,
      box.y + box.height / 2 - side,
      side * 2,
      side * 2,
    );
    this.viewer.viewport.fitBounds(rect);
  }

  /** Pan so the box is in view (keeps the zoom). */
  reveal(box: Box): void {
    const bounds = this.viewer.viewport.getBounds(true);
    const rect = this.viewer.viewport.imageToViewportRectangle(box.x, box.y, box.width, box.height);
    const inside =
      rect.x >= bounds.x &&
      rect.y >= bounds.y &&
      rect.x + rect.width <= bounds.x + bounds.width &&
      rect.y + rect.height <= bounds.y + bounds.height;
    if (!inside) this.viewer.viewport.panTo(new OpenSeadragon.Point(rect.x + rect.width / 2, rect.y + rect.height / 2));
  }

  home(): void {
    this.viewer.viewport.goHome();
  }

  zoomBy(factor: number): void {
    this.viewer.viewport.zoomBy(factor);
    this.viewer.viewport.applyConstraints();
  }

  pan(dx: number, dy: number): void {
    const bounds = this.viewer.viewport.getBounds(true);
    this.viewer.viewport.panBy(new OpenSeadragon.Point(bounds.width * dx, bounds.height * dy));
  }

  destroy(): void {
    this.annotator.destroy();
    this.viewer.destroy();
  }
}
