// Validates custom resources against the schemas of their operators' CRDs.
//
// Input (stdin): a JSON array of {module, model, doc}: the @kubernetes-models module holding the
// CRD's model, the model's class name, and the rendered resource. Output (stdout): a JSON array of
// {index, errors: [...]}, one per input document (empty errors when valid).
//
// Two checks, both from the CRDs' OpenAPI schemas as published in @kubernetes-models:
//   1. the model's compiled JSON Schema validator (types, required fields, enums, formats);
//   2. TypeScript's excess-property check of the document as an object literal of the model's
//      interface, which rejects unknown fields anywhere in the tree (a misspelt key would
//      otherwise be pruned silently by the API server).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const items = JSON.parse(readFileSync(0, "utf8"));
const results = items.map((_, index) => ({ index, errors: [] }));

// 1. Runtime validation.
for (const [index, item] of items.entries()) {
  const mod = await import(item.module);
  const Model = mod[item.model];
  if (!Model) {
    results[index].errors.push(`no model ${item.model} in ${item.module}`);
    continue;
  }
  try {
    new Model(item.doc).validate();
  } catch (error) {
    results[index].errors.push(String(error.message ?? error));
  }
}

// 2. Unknown fields: one TypeScript file, one constant per document, each on its own lines.
const work = mkdtempSync(path.join(here, ".check-"));
try {
  const lines = [];
  const owner = []; // line number (1-based) -> document index
  for (const [index, item] of items.entries()) {
    lines.push(`import type { I${item.model} as T${index} } from "${item.module}";`);
    owner.push(index);
  }
  for (const [index, item] of items.entries()) {
    const body = JSON.stringify(item.doc, null, 1).split("\n");
    body[0] = `export const d${index}: T${index} = ${body[0]}`;
    body[body.length - 1] += ";";
    for (const line of body) {
      lines.push(line);
      owner.push(index);
    }
  }
  const file = path.join(work, "resources.ts");
  writeFileSync(file, lines.join("\n") + "\n");
  const tsc = require.resolve("typescript/bin/tsc");
  try {
    execFileSync(
      process.execPath,
      [tsc, "--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext",
        "--moduleResolution", "nodenext", "--target", "es2022", "--pretty", "false", file],
      { cwd: here, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
  } catch (error) {
    const output = `${error.stdout ?? ""}${error.stderr ?? ""}`;
    for (const line of output.split("\n")) {
      const match = /\((\d+),\d+\): error TS\d+: (.*)$/.exec(line);
      if (!match) continue;
      const index = owner[Number(match[1]) - 1];
      const where = lines[Number(match[1]) - 1].trim();
      results[index ?? 0].errors.push(`${match[2]} (at ${where})`);
    }
    if (!output.includes("error TS")) throw error;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(results));
