// Cells shown as parts of their field image without cutting it: a crop is the field image as an element's
// background, scaled and shifted (logic/geometry.ts `cropView`); a mark is a box drawn over such an image. The
// gallery, the review queue and the cross-check show cells this way.

import type { Box, Field } from "../api/shapes";
import type { CropView } from "../logic/geometry";
import { h } from "./dom";

/** The style that shows `view` of the field's image as the element's background. */
export function cropBackground(field: Pick<Field, "image_url">, view: CropView): Partial<CSSStyleDeclaration> {
  return {
    backgroundImage: `url("${field.image_url}")`,
    backgroundSize: `${view.backgroundWidth}px ${view.backgroundHeight}px`,
    backgroundPosition: `${view.offsetX}px ${view.offsetY}px`,
  };
}

export interface Mark {
  box: Box;
  /** the border colour (default: the suggestions' amber, from the stylesheet) */
  colour?: string;
  /** 0-1; marks other than the current one are drawn faint */
  opacity?: number;
}

/** A box over an image drawn at `scale`, whose origin lies at (offsetX, offsetY) in the element. */
export function markElement(mark: Mark, scale: number, offsetX = 0, offsetY = 0): HTMLElement {
  const { box } = mark;
  return h("div", {
    class: "mark",
    style: {
      left: `${box.x * scale + offsetX}px`,
      top: `${box.y * scale + offsetY}px`,
      width: `${box.width * scale}px`,
      height: `${box.height * scale}px`,
      ...(mark.colour ? { borderColor: mark.colour } : {}),
      ...(mark.opacity !== undefined ? { opacity: String(mark.opacity) } : {}),
    },
  });
}

/** The whole field scaled to `width` pixels, with marks: where a cell sits in its field. */
export function fieldOverview(field: Field, width: number, marks: readonly Mark[], label: string): HTMLElement {
  const scale = width / field.width;
  return h(
    "div",
    {
      class: "field-context",
      role: "img",
      "aria-label": label,
      style: { width: `${width}px`, height: `${field.height * scale}px`, backgroundImage: `url("${field.image_url}")` },
    },
    marks.map((mark) => markElement(mark, scale)),
  );
}
