// Validate glTF/GLB files with the Khronos glTF validator.
// Usage: node validate_gltf.mjs FILE...   Prints one JSON report per file on one line each
// ({"file", "numErrors", "numWarnings", "messages": [...]}) and exits 1 when any file has errors.
import { readFile } from 'node:fs/promises';
import validator from 'gltf-validator';

let failed = false;
for (const file of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(file));
  const report = await validator.validateBytes(data, {
    uri: file,
    maxIssues: 100,
    // a .glb written by recon is self-contained: any external resource is an error
    externalResourceFunction: (uri) => Promise.reject(new Error(`external resource ${uri}`)),
  });
  const issues = report.issues;
  failed ||= issues.numErrors > 0;
  console.log(JSON.stringify({
    file, numErrors: issues.numErrors, numWarnings: issues.numWarnings, numInfos: issues.numInfos,
    messages: issues.messages.map((m) => ({ code: m.code, severity: m.severity, message: m.message, pointer: m.pointer })),
  }));
}
process.exit(failed ? 1 : 0);
