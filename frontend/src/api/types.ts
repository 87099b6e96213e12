// Response shapes of the foundation API (annotations/serializers.py); the pages' own APIs type theirs beside
// their clients.

export type Role = "annotator" | "adjudicator" | "admin" | "researcher";

export interface Me {
  id: number | null;
  username: string | null;
  roles: Role[];
}

export type Lineage = "granulocytic" | "erythroid" | "lymphoid" | "monocytic" | "megakaryocytic" | "other";

export interface CellClass {
  id: number;
  name: string;
  lineage: Lineage;
  is_blast: boolean;
  shortcut: string;
}

export interface Patient {
  id: number;
  code: string;
  split: string;
  case_count: number;
}

export interface Case {
  id: number;
  code: string;
  patient: number;
  patient_code: string;
  collected_on: string | null;
  confirmed_diagnosis: string;
  diagnosis_method: string;
  notes: string;
  smear_count: number;
}

export interface Smear {
  id: number;
  case: number;
  case_code: string;
  code: string;
  stain: string;
  field_count: number;
}

export type FieldStatus =
  "uploaded" | "prelabelled" | "in_annotation" | "in_crosscheck" | "in_adjudication" | "consensus";

export interface Field {
  id: number;
  smear: number;
  case: number;
  case_code: string;
  width: number;
  height: number;
  status: FieldStatus;
  original_name?: string;
  image_url: string;
  thumbnail_url: string;
}

export type SetKind = "annotator" | "prediction" | "consensus" | "imported";
export type SetStatus = "draft" | "submitted" | "locked";

export interface AnnotationSet {
  id: number;
  field: number;
  kind: SetKind;
  annotator: number | null;
  annotator_username: string | null;
  model_version: number | null;
  status: SetStatus;
  version: number;
  cell_count: number;
  submitted_at: string | null;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Prediction scores: 21 averaged probabilities and P(countable) (key names as the inference app stores them). */
export type Scores = Record<string, unknown>;

export interface Cell extends Box {
  id: number;
  annotation_set: number;
  countable: boolean;
  cell_class: number | null;
  scores: Scores;
  detector_score: number | null;
  confidence: number | null;
  margin: number | null;
  entropy: number | null;
  source_cell: number | null;
  review_outcome: string;
}

/** The attributes an annotator writes. */
export interface CellWrite extends Box {
  countable: boolean;
  cell_class: number | null;
  source_cell?: number | null;
}

/** What a 409 on an annotation-set write carries (annotations/services.py `annotation_set_snapshot`). */
export interface SetSnapshot {
  id: number;
  field: number;
  kind: SetKind;
  status: SetStatus;
  version: number;
  cells: Array<Box & { id: number; countable: boolean; cell_class: number | null; source_cell: number | null }>;
}
