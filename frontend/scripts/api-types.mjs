// Generates src/api/types.ts from the server's OpenAPI schema, so the UI's response and request types have one
// source: the serializers (drf-spectacular, aicell/api/schema.py).
//
//   node scripts/api-types.mjs           dump the schema (manage.py spectacular), write src/api/types.ts
//   node scripts/api-types.mjs --check   the same into a temporary file; fail when the committed file differs
//
// The Python of the repository's virtualenv runs manage.py (PYTHON overrides it). The output goes through Prettier
// with the project's settings, so the committed file passes `prettier --check` as it is.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import * as prettier from "prettier";

const FRONTEND = resolve(fileURLToPath(new URL("..", import.meta.url)));
const REPOSITORY = resolve(FRONTEND, "..");
const TARGET = join(FRONTEND, "src", "api", "types.ts");
const PYTHON = process.env.PYTHON ?? join(REPOSITORY, ".venv", "bin", "python");
const HEADER =
  "// The API's shapes, generated from the server's OpenAPI schema (`make api-types`, or `npm run api-types` in\n" +
  "// frontend/): edit the serializers, never this file. `make lint` fails when it is not current.\n" +
  "// The names the UI uses for these shapes are aliases in shapes.ts.\n\n";

function dumpSchema(directory) {
  const schema = join(directory, "openapi.yaml");
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} does not exist: run \`make install\` first (or set PYTHON).`);
  // Always the embedded default's engine: Django derives integer bounds from the database (64-bit on SQLite, 32-bit
  // on PostgreSQL), so the schema, and with it this file, would otherwise depend on where it was generated.
  const env = { ...process.env };
  delete env.DATABASE_URL;
  execFileSync(PYTHON, ["manage.py", "spectacular", "--file", schema], { cwd: REPOSITORY, stdio: "inherit", env });
  return schema;
}

async function generate(schema) {
  // A default in the schema does not make a request key required (the server fills it in).
  const nodes = await openapiTS(pathToFileURL(schema), { defaultNonNullable: false });
  const source = HEADER + COMMENT_HEADER + astToString(nodes);
  const options = (await prettier.resolveConfig(TARGET)) ?? {};
  return prettier.format(source, { ...options, filepath: TARGET });
}

async function main() {
  const check = process.argv.includes("--check");
  const directory = mkdtempSync(join(tmpdir(), "aicell-api-types-"));
  try {
    const generated = await generate(dumpSchema(directory));
    const name = relative(REPOSITORY, TARGET);
    if (!check) {
      writeFileSync(TARGET, generated);
      console.log(`${name} written from the OpenAPI schema.`);
      return;
    }
    const committed = existsSync(TARGET) ? readFileSync(TARGET, "utf-8") : "";
    if (committed === generated) {
      console.log(`${name} is current with the OpenAPI schema.`);
      return;
    }
    const fresh = join(directory, "types.ts");
    writeFileSync(fresh, generated);
    spawnSync("diff", ["-u", TARGET, fresh], { stdio: "inherit" });
    console.error(`\n${name} is not current with the server's OpenAPI schema: run \`make api-types\` and commit it.`);
    process.exitCode = 1;
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();
