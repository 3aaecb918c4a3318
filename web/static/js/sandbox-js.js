// A Web Worker that runs the candidate's JavaScript against test cases. It has no DOM and no
// network: the server sends this file with its own CSP (connect-src 'none'), and the
// network constructors are removed before any candidate code runs. The page that started it
// terminates it when the time limit passes.
import { canonical, shown } from "./sandbox-common.js";

for (const name of ["fetch", "XMLHttpRequest", "WebSocket", "EventSource", "importScripts", "Worker", "SharedWorker", "BroadcastChannel", "indexedDB", "caches"]) {
  try {
    Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false });
  } catch {
    /* not defined in this browser */
  }
}

const write = (...values) => postMessage({ type: "output", text: values.map(shown).join(" ") });
for (const method of ["log", "info", "warn", "error", "debug"]) console[method] = write;

self.onmessage = (event) => {
  const { source, function: name, tests } = event.data;
  if (!name) {
    // Code without tests (the scratch pad): run it, its console is the output.
    try {
      new Function(`"use strict";\n${source}`)();
      postMessage({ type: "done", status: "ran", tests: [] });
    } catch (error) {
      postMessage({ type: "done", status: "error", error: String(error), tests: [] });
    }
    return;
  }
  let fn;
  try {
    fn = new Function(`"use strict";\n${source}\n;return typeof ${name} === "function" ? ${name} : undefined;`)();
  } catch (error) {
    postMessage({ type: "done", status: "error", error: String(error), tests: [] });
    return;
  }
  if (typeof fn !== "function") {
    postMessage({ type: "done", status: "error", error: `Define a function named ${name}.`, tests: [] });
    return;
  }
  const results = tests.map((test) => {
    try {
      const value = fn(...structuredClone(test.args));
      const got = JSON.stringify(value) ?? "undefined";
      const passed = got !== "undefined" && canonical(JSON.parse(got)) === canonical(test.expected);
      return { passed, got: got.slice(0, 1000) };
    } catch (error) {
      return { passed: false, error: String(error).slice(0, 1000) };
    }
  });
  postMessage({ type: "done", status: results.every((r) => r.passed) ? "passed" : "failed", tests: results });
};
postMessage({ type: "ready" });
