// Client of the lab's own work: intake (patients, cases, smears, field uploads one file per request with its
// progress), assignment (fields to two annotators, their open loads, taking work back), users and roles, and each
// role's home summary.

import { api, ApiError, csrfToken, fetchAll, statusWords, withQuery, type ErrorBody } from "./http";
import type { Assignment } from "./review";
import type { Case, Field, Role, Smear } from "./shapes";
import type { components } from "./types";

type Schemas = components["schemas"];

export type Patient = Schemas["Patient"];
export type PatientWrite = Schemas["PatientRequest"];
export type CaseWrite = Schemas["CaseRequest"];
export type SmearWrite = Schemas["SmearRequest"];
export type User = Schemas["User"];
export type UserCreate = Schemas["UserCreateRequest"];
export type UserUpdate = Schemas["PatchedUserUpdateRequest"];
export type AnnotatorLoad = Schemas["AnnotatorLoad"];
export type Diagnosis = Schemas["ConfirmedDiagnosisEnum"];

const V1 = "/api/v1";

export const patients = {
  all: () => fetchAll<Patient>(`${V1}/patients`),
  create: (body: PatientWrite) => api.post<Patient>(`${V1}/patients`, body),
};

export const intakeCases = {
  all: () => fetchAll<Case>(`${V1}/cases`),
  create: (body: CaseWrite) => api.post<Case>(`${V1}/cases`, body),
};

export const intakeSmears = {
  all: () => fetchAll<Smear>(`${V1}/smears`),
  create: (body: SmearWrite) => api.post<Smear>(`${V1}/smears`, body),
};

export const intakeFields = {
  list: (query: { smear?: number; case?: number; status?: string }) =>
    fetchAll<Field>(withQuery(`${V1}/fields`, { ordering: "id", ...query })),
};

/**
 * One field image into a smear, in its own request so each file has its progress and its own answer: the server
 * stores it whole or not at all and names why it refused (too large, not an image, already stored as field N).
 */
export function uploadField(smearId: number, file: File, onProgress: (fraction: number) => void): Promise<Field> {
  return new Promise((resolve, reject) => {
    const body = new FormData();
    body.append("smear", String(smearId));
    body.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${V1}/fields`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let data: unknown = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 201 && Array.isArray(data)) {
        resolve(data[0] as Field);
        return;
      }
      const errorBody: ErrorBody = data && typeof data === "object" ? (data as ErrorBody) : {};
      reject(new ApiError(xhr.status, errorBody, statusWords(xhr.status)));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, {}, statusWords(0))));
    xhr.send(body);
  });
}

export const assignmentAdmin = {
  list: (query: { case?: number; smear?: number }) =>
    fetchAll<Assignment>(withQuery(`${V1}/assignments`, { ordering: "id", ...query })),
  create: (field: number, annotator: number) => api.post<Assignment>(`${V1}/assignments`, { field, annotator }),
  auto: (fields: number[]) => api.post<Schemas["AssignmentAutoResult"]>(`${V1}/assignments/auto`, { fields }),
  takeBack: (id: number) => api.delete(`${V1}/assignments/${id}`),
  loads: () => api.get<AnnotatorLoad[]>(`${V1}/assignments/loads`),
};

export const users = {
  all: () => fetchAll<User>(`${V1}/users`),
  create: (body: UserCreate) => api.post<User>(`${V1}/users`, body),
  update: (id: number, body: UserUpdate) => api.patch<User>(`${V1}/users/${id}`, body),
  setPassword: (id: number, password: string) => api.post<User>(`${V1}/users/${id}/password`, { password }),
};

interface JobLine {
  kind: string;
  id: number;
  progress: number;
  message: string;
  created_at: string;
}

interface JobCount {
  count: number;
  by_kind: Record<string, number>;
  recent: JobLine[];
}

/** The home summary; the schema documents it as a free object (one block per role the user holds). */
export interface HomeSummary {
  roles: Role[];
  admin?: {
    fields_waiting_for_assignment: number;
    fields_by_status: Record<string, number>;
    running_jobs: JobCount;
    queued_jobs: number;
    failed_jobs: JobCount;
    storage: { fields: number; image_bytes: number };
  };
  adjudicator?: {
    escalated_conflicts: number;
    fields_with_escalated_conflicts: number;
    fields_in_adjudication: number;
    fields_in_crosscheck: number;
  };
  annotator?: {
    assigned_fields: number;
    fields_to_annotate: number;
    conflicts_waiting: number;
    fields_with_conflicts_waiting: number;
    review_queue: number;
  };
  researcher?: {
    cases: number;
    cases_with_truth: number;
    exports: number;
    exports_running: number;
    exports_ready: number;
  };
}

export const home = () => api.get<HomeSummary>(`${V1}/home`);
