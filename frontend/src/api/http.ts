// The one way the UI talks to the server: same-origin fetch with the session cookie, the CSRF token on every
// unsafe method, JSON in and out, and every failure turned into an ApiError whose message is in words.

export interface FieldProblem {
  field: string;
  reason: string;
}

/** The API's error shape: {status, code, detail, errors: [{field, reason}], ...extra}. */
export interface ErrorBody {
  status?: number;
  code?: string;
  detail?: string;
  errors?: FieldProblem[];
  [extra: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problems: FieldProblem[];
  readonly body: ErrorBody;

  constructor(status: number, body: ErrorBody, fallback: string) {
    super(body.detail || fallback);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code ?? "";
    this.problems = Array.isArray(body.errors) ? body.errors : [];
    this.body = body;
  }
}

const STATUS_WORDS: Record<number, string> = {
  0: "The server could not be reached; check the connection and try again.",
  400: "The request was refused as invalid.",
  401: "You are not logged in (or your session expired); log in again.",
  403: "Your role does not allow this.",
  404: "Not found on the server.",
  409: "Someone changed this meanwhile.",
  413: "The upload is too large.",
  500: "The server failed on this request; the error was logged.",
  502: "The server is not answering (bad gateway).",
  503: "The server is temporarily unavailable; try again in a moment.",
};

export function statusWords(status: number): string {
  return STATUS_WORDS[status] ?? `The server answered with status ${status}.`;
}

/** "detail" plus each field problem, as sentences a person can act on. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const lines = [error.message];
    for (const problem of error.problems) {
      // The detail often repeats the first problem's reason verbatim; do not say it twice.
      if (problem.reason === error.message) continue;
      lines.push(
        problem.field && problem.field !== "non_field_errors" ? `${problem.field}: ${problem.reason}` : problem.reason,
      );
    }
    return lines.join("\n");
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export function csrfToken(cookie: string = document.cookie): string {
  for (const part of cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(value.join("="));
  }
  return "";
}

// --- activity: lets the shell show a progress bar while any request is slow --------------------------------------

type ActivityListener = (pending: number) => void;
const listeners = new Set<ActivityListener>();
let pending = 0;

export function onActivity(listener: ActivityListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setPending(delta: number): void {
  pending += delta;
  for (const listener of listeners) listener(pending);
}

// --- requests ----------------------------------------------------------------------------------------------------

export interface RequestOptions {
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  ifMatch?: number;
  signal?: AbortSignal;
  /** the request outlives the page (sent while it unloads) */
  keepalive?: boolean;
}

export interface ApiResponse<T> {
  status: number;
  data: T;
  etag: number | null;
  headers: Headers;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function parseEtag(value: string | null): number | null {
  if (!value) return null;
  const parsed = Number.parseInt(value.replace(/^W\//, "").replaceAll('"', ""), 10);
  return Number.isFinite(parsed) ? parsed : null;
}

export async function request<T>(method: string, url: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  if (!SAFE_METHODS.has(method)) headers["X-CSRFToken"] = csrfToken();
  if (options.ifMatch !== undefined) headers["If-Match"] = `"${options.ifMatch}"`;
  setPending(1);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body,
      credentials: "same-origin",
      signal: options.signal,
      keepalive: options.keepalive,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, {}, statusWords(0));
  } finally {
    setPending(-1);
  }
  const data = await readBody(response);
  if (!response.ok) {
    const errorBody: ErrorBody = data && typeof data === "object" ? (data as ErrorBody) : {};
    throw new ApiError(response.status, errorBody, statusWords(response.status));
  }
  return {
    status: response.status,
    data: data as T,
    etag: parseEtag(response.headers.get("ETag")),
    headers: response.headers,
  };
}

async function readBody(response: Response): Promise<unknown> {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  // A non-JSON error page (a proxy's, or Django's HTML 500) carries no sentence for users: statusWords() speaks.
  return response.ok ? await response.text() : null;
}

export const api = {
  get: <T>(url: string, options?: RequestOptions) => request<T>("GET", url, options).then((r) => r.data),
  post: <T>(url: string, json?: unknown, options?: RequestOptions) =>
    request<T>("POST", url, { ...options, json }).then((r) => r.data),
  patch: <T>(url: string, json: unknown, options?: RequestOptions) =>
    request<T>("PATCH", url, { ...options, json }).then((r) => r.data),
  delete: (url: string, options?: RequestOptions) => request<null>("DELETE", url, options).then(() => undefined),
};

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** Every row of a paginated list, following `next` (page_size 500, the server's maximum). */
export async function fetchAll<T>(url: string, onPage?: (loaded: number, total: number) => void): Promise<T[]> {
  const rows: T[] = [];
  let next: string | null = withQuery(url, { page_size: 500 });
  while (next) {
    const page: Page<T> = await api.get<Page<T>>(next);
    rows.push(...page.results);
    onPage?.(rows.length, page.count);
    next = page.next;
  }
  return rows;
}

export function withQuery(url: string, params: Record<string, string | number | boolean | null | undefined>): string {
  const [path, existing = ""] = url.split("?", 2);
  const query = new URLSearchParams(existing);
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Whether a 404 means "this server has no such endpoint" (a page whose API arrives with a later version) rather
 * than "no such object": the server's 404 for an address no endpoint has names the `path` as its problem
 * (aicell/views.py); a proxy's or an older server's has no code at all.
 */
export function isMissingEndpoint(error: unknown): boolean {
  if (!(error instanceof ApiError) || error.status !== 404) return false;
  return !error.code || error.problems.some((problem) => problem.field === "path");
}
