// The API's shapes under the names the UI uses: aliases of the types generated from the OpenAPI schema (types.ts),
// so a serializer change shows up as a type error here rather than as a surprise in the browser. The few shapes
// the schema does not describe (a 409's body, JSON columns documented as "any value") are written out below, each
// saying why.

import type { components } from "./types";

type Schemas = components["schemas"];

export type Role = Schemas["RoleEnum"];
export type Me = Schemas["Me"];
export type Lineage = Schemas["LineageEnum"];
export type CellClass = Schemas["CellClass"];
export type Case = Schemas["Case"];
export type Smear = Schemas["Smear"];
export type FieldStatus = Schemas["FieldStatusEnum"];
export type Field = Schemas["Field"];
export type SetKind = Schemas["AnnotationSetKindEnum"];
export type SetStatus = Schemas["AnnotationStatusEnum"];
export type AnnotationSet = Schemas["AnnotationSet"];

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Prediction scores: 21 averaged probabilities and P(countable) (key names as the inference app stores them). */
export type Scores = Record<string, unknown>;

/** A cell; the schema documents the `scores` JSON column as any value, the server always stores an object. */
export type Cell = Omit<Schemas["Cell"], "scores"> & { readonly scores: Scores };

/** What /accept answers: the copies it made (cells as above) and the suggestions the set held already. */
export type AcceptedSuggestions = Omit<Schemas["AcceptedSuggestions"], "created"> & { readonly created: Cell[] };

/** A model suggestion as the pages use it: a prediction cell, or a cell of the review-queue API. */
export type Suggestion = Pick<
  Cell,
  "id" | keyof Box | "countable" | "cell_class" | "scores" | "detector_score" | "confidence" | "margin" | "entropy"
>;

type CellWriteBody = Schemas["CellWriteRequest"];

/** The attributes an annotator writes (the write body without its version and reason). */
export type CellWrite = Required<Pick<CellWriteBody, "x" | "y" | "width" | "height" | "countable" | "cell_class">> &
  Pick<CellWriteBody, "source_cell">;

/**
 * What a 409 on an annotation-set write carries in `current` (annotations/services.py `annotation_set_snapshot`):
 * the schema documents a 409 as the error shape only.
 */
export interface SetSnapshot {
  id: number;
  field: number;
  kind: SetKind;
  status: SetStatus;
  version: number;
  cells: Array<Box & { id: number; countable: boolean; cell_class: number | null; source_cell: number | null }>;
}
