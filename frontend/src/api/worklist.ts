// The worklist's rows: my assignments (double-review API), or, on a server without it, the fields (first 500)
// joined with my own annotation sets.

import { annotationSets } from "./foundation";
import { api, fetchAll, isMissingEndpoint, withQuery, type Page } from "./http";
import { assignments, type Assignment } from "./review";
import type { AnnotationSet, Field, FieldStatus, Me, Smear } from "./shapes";

export interface WorkItem {
  fieldId: number;
  caseId: number;
  caseCode: string;
  smearId: number;
  smearLabel: string;
  fieldStatus: FieldStatus;
  state: string;
  stateClass: string;
  cellCount: number | null;
  done: boolean;
  href: string;
  action: string;
}

export interface Worklist {
  items: WorkItem[];
  source: string;
}

const FIELD_LIMIT = 500;

export async function loadWorklist(me: Me): Promise<Worklist> {
  if (me.roles.includes("annotator")) {
    try {
      const [mine, smears] = await Promise.all([assignments.mine(), fetchAll<Smear>("/api/v1/smears")]);
      return {
        items: mine.map((a) =>
          assignmentItem(
            a,
            smears.find((s) => s.id === a.smear),
          ),
        ),
        source: "your assignments",
      };
    } catch (error) {
      if (!isMissingEndpoint(error)) throw error;
    }
  }
  return fieldWorklist(me);
}

const PROGRESS_WORDS: Record<Assignment["progress"], string> = {
  not_started: "not started",
  in_progress: "in progress",
  submitted: "submitted",
  pending: "pending",
};

function assignmentItem(assignment: Assignment, smear: Smear | undefined): WorkItem {
  const crossCheck = ["in_crosscheck", "in_adjudication"].includes(assignment.field_status);
  const submitted = assignment.progress === "submitted";
  return {
    fieldId: assignment.field,
    caseId: assignment.case,
    caseCode: smear?.case_code ?? String(assignment.case),
    smearId: assignment.smear,
    smearLabel: smear?.code ?? String(assignment.smear),
    fieldStatus: assignment.field_status as FieldStatus,
    state: `${PROGRESS_WORDS[assignment.progress]} (${assignment.side.toUpperCase()})`,
    stateClass: submitted ? "done" : assignment.progress === "in_progress" ? "draft" : "todo",
    cellCount: assignment.cell_count,
    done: submitted,
    href: crossCheck ? `/crosscheck/${assignment.field}` : `/fields/${assignment.field}`,
    action: crossCheck
      ? "Cross-check"
      : submitted
        ? "View"
        : assignment.progress === "in_progress"
          ? "Continue"
          : "Annotate",
  };
}

async function fieldWorklist(me: Me): Promise<Worklist> {
  const [fieldPage, smears, mySets] = await Promise.all([
    api.get<Page<Field>>(withQuery("/api/v1/fields", { page_size: FIELD_LIMIT, ordering: "id" })),
    fetchAll<Smear>("/api/v1/smears"),
    me.roles.includes("annotator")
      ? annotationSets.list({ kind: "annotator", annotator: me.id ?? undefined })
      : Promise.resolve([]),
  ]);
  const smearCodes = new Map(smears.map((s) => [s.id, s.code]));
  const setByField = new Map<number, AnnotationSet>(mySets.map((set) => [set.field, set]));
  const annotating = me.roles.includes("annotator");
  const fields = fieldPage.results.filter((field) =>
    annotating
      ? field.status !== "consensus" || setByField.has(field.id)
      : ["in_crosscheck", "in_adjudication"].includes(field.status),
  );
  const items = fields.map((field) =>
    workItem(field, smearCodes.get(field.smear) ?? String(field.smear), setByField.get(field.id), annotating),
  );
  const more = fieldPage.count > FIELD_LIMIT ? ` (first ${FIELD_LIMIT} of ${fieldPage.count} fields)` : "";
  return { items, source: `fields and your annotation sets${more}` };
}

function workItem(field: Field, smearLabel: string, set: AnnotationSet | undefined, annotating: boolean): WorkItem {
  const base = {
    fieldId: field.id,
    caseId: field.case,
    caseCode: field.case_code,
    smearId: field.smear,
    smearLabel,
    fieldStatus: field.status,
  };
  if (!annotating) {
    return {
      ...base,
      state: "waiting for a decision",
      stateClass: "todo",
      cellCount: null,
      done: false,
      href: "/crosscheck",
      action: "Cross-check",
    };
  }
  if (!set) {
    return {
      ...base,
      state: "not started",
      stateClass: "todo",
      cellCount: null,
      done: false,
      href: `/fields/${field.id}`,
      action: "Annotate",
    };
  }
  const submitted = set.status !== "draft";
  return {
    ...base,
    state: submitted ? "submitted" : `draft (version ${set.version})`,
    stateClass: submitted ? "done" : "draft",
    cellCount: set.cell_count,
    done: submitted,
    href: `/fields/${field.id}`,
    action: submitted ? "View" : "Continue",
  };
}
