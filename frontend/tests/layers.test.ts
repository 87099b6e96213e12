// The UI's layers (frontend/ARCHITECTURE-frontend.md), checked on the sources: what each folder may import.
// `import type` is free (types vanish from the bundle); these rules are about code that runs.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src", import.meta.url));

function sources(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** Each source file (relative to src/, no extension) with the modules it imports code from. */
function valueImports(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const path of sources(SRC)) {
    const text = readFileSync(path, "utf-8");
    const imports: string[] = [];
    for (const match of text.matchAll(/^import\s+(type\s+)?([\s\S]*?)\s+from\s+"([^"]+)";/gm)) {
      const [, typeOnly, names, target] = match;
      const allTypes =
        /^\{[^}]*\}$/.test(names) &&
        names
          .slice(1, -1)
          .split(",")
          .every((n) => /^\s*type\s/.test(n));
      if (typeOnly || allTypes) continue;
      imports.push(target.startsWith(".") ? relative(SRC, join(dirname(path), target)) : target);
    }
    for (const match of text.matchAll(/^import\s+"([^"]+)";/gm)) imports.push(match[1]);
    found.set(relative(SRC, path).replace(/\.ts$/, ""), imports);
  }
  return found;
}

const IMPORTS = valueImports();
const FETCHING_CLIENTS = ["foundation", "review", "reviewQueue", "worklist", "training", "exports", "differential"];

function offending(files: (name: string) => boolean, allowed: (target: string) => boolean): string[] {
  return [...IMPORTS.entries()]
    .filter(([name]) => files(name))
    .flatMap(([name, targets]) => targets.filter((t) => !allowed(t)).map((t) => `${name} imports ${t}`));
}

describe("the UI's layers", () => {
  it("reads the sources", () => {
    expect(IMPORTS.size).toBeGreaterThan(40);
    expect(IMPORTS.get("pages/gallery/index")).toContain("pages/gallery/state");
  });

  it("keeps logic/ pure: other logic, and the API's error type, nothing that draws or fetches", () => {
    expect(
      offending(
        (n) => n.startsWith("logic/"),
        (t) => t.startsWith("logic/") || t === "api/http",
      ),
    ).toEqual([]);
  });

  it("keeps api/ to talking to the server (no pages, no drawing)", () => {
    expect(
      offending(
        (n) => n.startsWith("api/"),
        (t) => t.startsWith("api/"),
      ),
    ).toEqual([]);
  });

  it("keeps ui/ components free of pages and of the API's clients", () => {
    const allowed = (t: string) =>
      !t.startsWith("pages/") &&
      !["main", "router", "context"].includes(t) &&
      !FETCHING_CLIENTS.some((client) => t === `api/${client}`);
    expect(offending((n) => n.startsWith("ui/"), allowed)).toEqual([]);
  });

  it("keeps each page's state.ts pure (logic only), so its transitions are tested in Node", () => {
    expect(
      offending(
        (n) => /^pages\/.+\/state$/.test(n),
        (t) => t.startsWith("logic/"),
      ),
    ).toEqual([]);
  });

  it("lets pages use each other only through the route table and pages/shared", () => {
    // A page is a module (pages/login) or a folder (pages/gallery/...); it imports its own folder and pages/shared.
    const folderOf = (name: string) => name.split("/").slice(0, 2).join("/");
    const allowed = (name: string) => (t: string) =>
      !t.startsWith("pages/") ||
      t.startsWith("pages/shared/") ||
      (folderOf(name) !== name && folderOf(t) === folderOf(name));
    const problems = [...IMPORTS.entries()]
      .filter(([name]) => name.startsWith("pages/") && name !== "pages/index")
      .flatMap(([name, targets]) => targets.filter((t) => !allowed(name)(t)).map((t) => `${name} imports ${t}`));
    expect(problems).toEqual([]);
  });
});
