// Validates Kubernetes objects offline against the API schemas of the npm
// package kubernetes-models (and the Prometheus Operator's for
// ServiceMonitor). Reads multi-document YAML files (as `kubectl kustomize`
// prints them) named on the command line; prints one line per object and
// exits 1 if any object fails, naming the file, object and schema error.
// The schemas check types, required fields, enums and formats; they allow
// fields they do not define, so a misspelt field name is not caught here.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion -> module of its models.
function modelModule(apiVersion) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  }
  return `kubernetes-models/${apiVersion}`;
}

let failed = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.log(`FAIL ${file}: YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    checked++;
    const name = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
    let Model;
    try {
      Model = (await import(modelModule(String(obj.apiVersion))))[obj.kind];
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      console.log(`FAIL ${file}: ${name}: no schema for ${obj.apiVersion} ${obj.kind}`);
      failed++;
      continue;
    }
    const errors = [];
    try {
      new Model(obj).validate();
    } catch (e) {
      errors.push(e.message);
    }
    if (errors.length > 0) {
      console.log(`FAIL ${file}: ${name}: ${errors.join("; ")}`);
      failed++;
    } else {
      console.log(`ok   ${file}: ${name} (${obj.apiVersion})`);
    }
  }
}
console.log(`${checked - failed} valid, ${failed} invalid`);
process.exit(failed > 0 || checked === 0 ? 1 : 0);
