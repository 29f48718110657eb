// Validate glb files with the Khronos glTF validator: prints {files, errors: [{file, code, message, pointer}]}.
// Usage: node validate.mjs FILE...
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

const errors = [];
const issues = {};
for (const file of process.argv.slice(2)) {
  const report = await validator.validateBytes(new Uint8Array(await readFile(file)), { uri: file, maxIssues: 50 });
  for (const m of report.issues.messages) {
    if (m.severity === 0) errors.push({ file, code: m.code, message: m.message, pointer: m.pointer });
    issues[m.code] = (issues[m.code] || 0) + 1;
  }
}
console.log(JSON.stringify({ files: process.argv.length - 2, errors, issues }));
