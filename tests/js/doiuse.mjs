// Checks mail HTML against the caniemail data for the clients our readers use.
// Usage: node tests/js/doiuse.mjs FILE.html...  Prints {"FILE.html": {"errors": [...], "warnings": [...]}} as JSON.
import { readFileSync } from "node:fs";
import { doIUseEmail } from "@jsx-email/doiuse-email";

const emailClients = ["gmail.*", "outlook.*", "apple-mail.*", "yahoo.*"];
const report = {};
for (const file of process.argv.slice(2)) {
  const result = doIUseEmail(readFileSync(file, "utf8"), { emailClients });
  report[file] = { errors: result.success ? [] : result.errors, warnings: result.warnings };
}
process.stdout.write(JSON.stringify(report, null, 1));
