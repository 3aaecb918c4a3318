// A Web Worker that runs the candidate's Python in Pyodide (served by this service from
// /static/vendor/pyodide/, never from a CDN). Memory: the WebAssembly heap may not grow past
// the limit given in this script's URL (?memory=MB), so a large allocation raises MemoryError
// in Python. Time: the page terminates the worker when its limit passes.
import { loadPyodide } from "/static/vendor/pyodide/pyodide.mjs";

const limitMb = Number(new URL(import.meta.url).searchParams.get("memory") || 256);
const limitBytes = limitMb * 1024 * 1024;
const grow = WebAssembly.Memory.prototype.grow;
let capped = false;
WebAssembly.Memory.prototype.grow = function (pages) {
  if (capped && this.buffer.byteLength + pages * 65536 > limitBytes) {
    throw new RangeError(`the memory limit of ${limitMb} MB`);
  }
  return grow.call(this, pages);
};

const write = (text) => postMessage({ type: "output", text });

const HARNESS = `
import json, traceback
job = json.loads(job_json)
space = {"__name__": "solution"}
result = {"tests": []}
try:
    exec(compile(job["source"], "solution.py", "exec"), space)
    fn = space.get(job["function"]) if job["function"] else None
    if not job["function"]:
        result["ran"] = True
    elif not callable(fn):
        result["error"] = "Define a function named " + job["function"] + "."
    else:
        for test in job["tests"]:
            try:
                got = json.dumps(fn(*test["args"]))
                result["tests"].append({"passed": json.loads(got) == test["expected"], "got": got[:1000]})
            except MemoryError:
                raise
            except Exception as exc:
                result["tests"].append({"passed": False, "error": f"{type(exc).__name__}: {exc}"[:1000]})
except MemoryError:
    result["memory"] = True
except Exception:
    result["error"] = "".join(traceback.format_exc().splitlines(True)[-3:])[-1000:]
json.dumps(result)
`;

let pyodide = null;
try {
  pyodide = await loadPyodide({ indexURL: "/static/vendor/pyodide/", stdout: write, stderr: write });
  // Loaded: from here on nothing may reach the network, and the heap is capped.
  for (const name of ["fetch", "XMLHttpRequest", "WebSocket", "EventSource", "importScripts", "Worker", "SharedWorker", "BroadcastChannel", "indexedDB", "caches"]) {
    try {
      Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false });
    } catch {
      /* not defined in this browser */
    }
  }
  capped = true;
  postMessage({ type: "ready" });
} catch (error) {
  postMessage({ type: "failed", error: `Python could not start: ${error}` });
}

self.onmessage = (event) => {
  if (!pyodide) return;
  const { source, function: name, tests } = event.data;
  let result;
  try {
    pyodide.globals.set("job_json", JSON.stringify({ source, function: name, tests }));
    result = JSON.parse(pyodide.runPython(HARNESS));
  } catch (error) {
    const memory = String(error).includes("memory") || String(error).includes("MemoryError");
    postMessage({ type: "done", status: memory ? "memory" : "error", error: String(error).slice(-1000), tests: [] });
    return;
  }
  if (result.memory) {
    postMessage({ type: "done", status: "memory", tests: result.tests });
    return;
  }
  if (result.error) {
    postMessage({ type: "done", status: "error", error: result.error, tests: result.tests });
    return;
  }
  if (result.ran) {
    postMessage({ type: "done", status: "ran", tests: [] });
    return;
  }
  postMessage({ type: "done", status: result.tests.every((r) => r.passed) ? "passed" : "failed", tests: result.tests });
};
