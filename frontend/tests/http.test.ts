// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ApiError,
  csrfToken,
  describeError,
  isMissingEndpoint,
  onActivity,
  parseEtag,
  request,
  withQuery,
} from "../src/api/http";
import { annotationSets } from "../src/api/foundation";
import { reviewStrategies } from "../src/api/reviewQueue";

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

afterEach(() => {
  vi.unstubAllGlobals();
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
});

describe("request", () => {
  it("sends the CSRF token and If-Match on writes and reads the version from the ETag", async () => {
    document.cookie = "csrftoken=abc%3D123";
    const fetchMock = vi.fn().mockResolvedValue(jsonResponse(201, { id: 7 }, { ETag: '"4"' }));
    vi.stubGlobal("fetch", fetchMock);
    const response = await request<{ id: number }>("POST", "/api/v1/x", { json: { a: 1 }, ifMatch: 3 });
    const [, init] = fetchMock.mock.calls[0];
    expect(init.headers["X-CSRFToken"]).toBe("abc=123");
    expect(init.headers["If-Match"]).toBe('"3"');
    expect(init.body).toBe('{"a":1}');
    expect(init.credentials).toBe("same-origin");
    expect(response.data).toEqual({ id: 7 });
    expect(response.etag).toBe(4);
  });

  it("sends no CSRF header on reads", async () => {
    const fetchMock = vi.fn().mockResolvedValue(jsonResponse(200, []));
    vi.stubGlobal("fetch", fetchMock);
    await request("GET", "/api/v1/x");
    expect(fetchMock.mock.calls[0][1].headers["X-CSRFToken"]).toBeUndefined();
  });

  it("turns the API's error shape into an ApiError that keeps the body", async () => {
    const body = { status: 409, code: "conflict", detail: "The set changed.", errors: [], current: { version: 5 } };
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(jsonResponse(409, body)));
    const error = await request("PATCH", "/api/v1/cells/1", { json: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(409);
    expect((error as ApiError).message).toBe("The set changed.");
    expect((error as ApiError).body.current).toEqual({ version: 5 });
  });

  it("says in words when the server cannot be reached", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    const error = (await request("GET", "/api/v1/x").catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/could not be reached/);
  });

  it("gives a non-JSON error page a sentence from its status", async () => {
    vi.stubGlobal(
      "fetch",
      vi
        .fn()
        .mockResolvedValue(
          new Response("<html>Bad gateway</html>", { status: 502, headers: { "Content-Type": "text/html" } }),
        ),
    );
    const error = (await request("GET", "/api/v1/x").catch((e: unknown) => e)) as ApiError;
    expect(error.message).toMatch(/bad gateway/);
  });

  it("reports how many requests are pending", async () => {
    let resolve: (r: Response) => void = () => undefined;
    vi.stubGlobal("fetch", vi.fn().mockReturnValue(new Promise<Response>((r) => (resolve = r))));
    const seen: number[] = [];
    const stop = onActivity((n) => seen.push(n));
    const pending = request("GET", "/api/v1/x");
    resolve(jsonResponse(200, {}));
    await pending;
    stop();
    expect(seen).toEqual([1, 0]);
  });
});

describe("errors in words", () => {
  it("lists each field problem after the detail, without repeating the detail", () => {
    const error = new ApiError(
      400,
      {
        detail: "The box lies outside the image.",
        errors: [
          { field: "width", reason: "x + width = 700 exceeds the image width 640" },
          { field: "version", reason: "The box lies outside the image." },
          { field: "non_field_errors", reason: "one more" },
        ],
      },
      "fallback",
    );
    expect(describeError(error)).toBe(
      "The box lies outside the image.\nwidth: x + width = 700 exceeds the image width 640\none more",
    );
  });

  it("tells an unknown URL from an object that does not exist", () => {
    expect(isMissingEndpoint(new ApiError(404, {}, "Not found"))).toBe(true);
    const noEndpoint = {
      code: "not_found",
      detail: "No such address in the API.",
      errors: [{ field: "path", reason: "x" }],
    };
    expect(isMissingEndpoint(new ApiError(404, noEndpoint, "x"))).toBe(true);
    expect(isMissingEndpoint(new ApiError(404, { code: "not_found", detail: "No Case matches." }, "x"))).toBe(false);
    expect(isMissingEndpoint(new ApiError(403, {}, "x"))).toBe(false);
  });
});

describe("helpers", () => {
  it("reads the CSRF cookie among others", () => {
    expect(csrfToken("sessionid=1; csrftoken=tok%2Fen; other=2")).toBe("tok/en");
    expect(csrfToken("sessionid=1")).toBe("");
  });

  it("parses strong and weak ETags", () => {
    expect(parseEtag('"12"')).toBe(12);
    expect(parseEtag('W/"3"')).toBe(3);
    expect(parseEtag(null)).toBeNull();
    expect(parseEtag('"abc"')).toBeNull();
  });

  it("adds query parameters, skipping empty ones and encoding '+'", () => {
    expect(withQuery("/a?x=1", { source: "consensus+model", empty: "", none: null, n: 2 })).toBe(
      "/a?x=1&source=consensus%2Bmodel&n=2",
    );
    expect(withQuery("/a", {})).toBe("/a");
  });
});

describe("clients", () => {
  it("accepts suggestions by their ids with the set version, reading the new version", async () => {
    const fetchMock = vi.fn().mockResolvedValue(jsonResponse(200, { created: [], skipped: [7], version: 6 }));
    vi.stubGlobal("fetch", fetchMock);
    const written = await annotationSets.accept(3, 5, [7, 8]);
    const [url, init] = fetchMock.mock.calls[0];
    expect([url, init.method, init.body, init.headers["If-Match"]]).toEqual([
      "/api/v1/annotation-sets/3/accept",
      "POST",
      '{"cells":[7,8]}',
      '"5"',
    ]);
    expect(written).toEqual({ value: { created: [], skipped: [7], version: 6 }, version: 6 });
  });

  it("lists the server's review strategies, or says it has no list and offers those its queue accepts", async () => {
    const listed = [{ name: "margin", label: "Margin", description: "smallest margin first", default: true }];
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(jsonResponse(200, listed)));
    expect(await reviewStrategies()).toEqual({ strategies: listed, listed: true });

    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(new Response("<h1>Not Found</h1>", { status: 404 })));
    const fallback = await reviewStrategies();
    expect(fallback.listed).toBe(false);
    expect(fallback.strategies.map((s) => [s.name, s.label, s.default])).toEqual([
      ["entropy", "Entropy", true],
      ["margin", "Margin", false],
      ["least_confidence", "Least confidence", false],
      ["disagreement", "Disagreement", false],
      ["detector", "Detector", false],
      ["countability", "Countability", false],
      ["random", "Random", false],
    ]);
  });
});
