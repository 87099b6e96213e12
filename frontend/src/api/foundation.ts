// Client of the foundation API: session, cases, smears, fields, annotation sets and cells.

import { api, ApiError, fetchAll, request, withQuery, type Page } from "./http";
import type { CellWriter } from "../logic/setEditor";
import type {
  AcceptedSuggestions,
  AnnotationSet,
  Case,
  Cell,
  CellClass,
  CellWrite,
  Field,
  Me,
  SetKind,
  SetSnapshot,
  Smear,
} from "./shapes";

const V1 = "/api/v1";

export const session = {
  me: () => api.get<Me>(`${V1}/auth/session`),
  login: (username: string, password: string) => api.post<Me>(`${V1}/auth/session`, { username, password }),
  logout: () => api.delete(`${V1}/auth/session`),
};

export const cellClasses = () => api.get<CellClass[]>(`${V1}/cell-classes`);

export const cases = {
  list: (params: { code?: string; page?: number } = {}) =>
    api.get<Page<Case>>(withQuery(`${V1}/cases`, { page_size: 100, ...params })),
  get: (id: number) => api.get<Case>(`${V1}/cases/${id}`),
};

export const smears = {
  ofCase: (caseId: number) => fetchAll<Smear>(withQuery(`${V1}/smears`, { case: caseId })),
  get: (id: number) => api.get<Smear>(`${V1}/smears/${id}`),
};

export interface FieldQuery {
  smear?: number;
  case?: number;
  status?: string;
}

/** A field's neighbours in its case (by id) and how many fields come before and after it. */
export interface FieldNeighbours {
  previous: number | null;
  next: number | null;
  before: number;
  after: number;
}

export const fields = {
  list: (query: FieldQuery = {}) => fetchAll<Field>(withQuery(`${V1}/fields`, { ordering: "id", ...query })),
  get: (id: number) => api.get<Field>(`${V1}/fields/${id}`),
  /** Two one-row pages, whatever the size of the case (listing a 10,000-field case per field took seconds). */
  neighbours: async (caseId: number, fieldId: number): Promise<FieldNeighbours> => {
    const one = (query: Record<string, string | number>) =>
      api.get<Page<Field>>(withQuery(`${V1}/fields`, { case: caseId, page_size: 1, ...query }));
    const [earlier, later] = await Promise.all([
      one({ before: fieldId, ordering: "-id" }),
      one({ after: fieldId, ordering: "id" }),
    ]);
    return {
      previous: earlier.results[0]?.id ?? null,
      next: later.results[0]?.id ?? null,
      before: earlier.count,
      after: later.count,
    };
  },
};

export interface SetQuery {
  field?: number;
  case?: number;
  kind?: SetKind;
  annotator?: number;
  status?: string;
}

export interface VersionedCells {
  cells: Cell[];
  version: number | null;
}

export const annotationSets = {
  list: (query: SetQuery) => fetchAll<AnnotationSet>(withQuery(`${V1}/annotation-sets`, { ...query })),
  get: (id: number) => api.get<AnnotationSet>(`${V1}/annotation-sets/${id}`),
  create: (fieldId: number) => api.post<AnnotationSet>(`${V1}/annotation-sets`, { field: fieldId }),
  async cells(id: number): Promise<VersionedCells> {
    const response = await request<Cell[]>("GET", `${V1}/annotation-sets/${id}/cells`);
    return { cells: response.data, version: response.etag };
  },
  /** Copy model suggestions of the set's field into the set, `source_cell` naming each (one version step). */
  async accept(id: number, version: number, suggestions: number[]): Promise<Written<AcceptedSuggestions>> {
    const response = await request<AcceptedSuggestions>("POST", `${V1}/annotation-sets/${id}/accept`, {
      json: { cells: suggestions },
      ifMatch: version,
    });
    return { value: response.data, version: response.etag ?? response.data.version };
  },
  async submit(id: number, version: number): Promise<AnnotationSet> {
    return (await request<AnnotationSet>("POST", `${V1}/annotation-sets/${id}/submit`, { json: {}, ifMatch: version }))
      .data;
  },
};

/** A write's result and the set version it produced (from the ETag). */
export interface Written<T> {
  value: T;
  version: number | null;
}

export const cells = {
  list: (query: {
    field?: number;
    case?: number;
    smear?: number;
    kind?: SetKind;
    annotation_set?: number;
    ordering?: string;
  }) => fetchAll<Cell>(withQuery(`${V1}/cells`, { ...query })),
  page: (query: Record<string, string | number | undefined>) => api.get<Page<Cell>>(withQuery(`${V1}/cells`, query)),
  async create(setId: number, version: number, data: CellWrite): Promise<Written<Cell>> {
    const response = await request<Cell>("POST", `${V1}/annotation-sets/${setId}/cells`, {
      json: data,
      ifMatch: version,
    });
    return { value: response.data, version: response.etag };
  },
  async update(cellId: number, version: number, changes: Partial<CellWrite>): Promise<Written<Cell>> {
    const response = await request<Cell>("PATCH", `${V1}/cells/${cellId}`, { json: changes, ifMatch: version });
    return { value: response.data, version: response.etag };
  },
  async delete(cellId: number, version: number): Promise<Written<null>> {
    const response = await request<null>("DELETE", `${V1}/cells/${cellId}`, { ifMatch: version });
    return { value: null, version: response.etag };
  },
};

/** My own draft set on a field: the existing one, or a new one (a 409 names the one that exists). */
export async function ensureMySet(fieldId: number, me: Me): Promise<AnnotationSet> {
  const mine = await annotationSets.list({ field: fieldId, kind: "annotator", annotator: me.id ?? undefined });
  if (mine.length) return mine[0];
  try {
    return await annotationSets.create(fieldId);
  } catch (error) {
    // Another tab created it between the two requests: the 409 names it.
    const existing = error instanceof ApiError ? error.body.existing_annotation_set_id : undefined;
    if (typeof existing === "number") return annotationSets.get(existing);
    throw error;
  }
}

/** The newest model prediction set of a field, if the field was pre-labelled. */
export async function latestPrediction(fieldId: number): Promise<AnnotationSet | null> {
  const predictions = await annotationSets.list({ field: fieldId, kind: "prediction" });
  return predictions.reduce<AnnotationSet | null>(
    (newest, set) => (!newest || set.id > newest.id ? set : newest),
    null,
  );
}

/** The writes of continuous saving (logic/setEditor.ts) over this API. */
export const cellWriter: CellWriter = {
  create: cells.create,
  accept: annotationSets.accept,
  update: cells.update,
  delete: cells.delete,
  async snapshot(setId: number): Promise<SetSnapshot> {
    const [set, current] = await Promise.all([annotationSets.get(setId), annotationSets.cells(setId)]);
    return {
      id: set.id,
      field: set.field,
      kind: set.kind,
      status: set.status,
      version: current.version ?? set.version,
      cells: current.cells,
    };
  },
};
