// Runs code against test cases in a Web Worker of this page (never on the server), with a time
// limit (the worker is terminated) and a memory limit (Python: the WebAssembly heap is capped).
import { t } from "./i18n.js";

const WORKERS = {
  javascript: (memoryMb) => new Worker("/static/js/sandbox-js.js", { type: "module" }),
  python: (memoryMb) => new Worker(`/static/js/sandbox-python.js?memory=${memoryMb}`, { type: "module" }),
};
const MAX_OUTPUT = 8000;

export class Sandbox {
  constructor({ timeoutMs = 5000, memoryMb = 256, loadTimeoutMs = 60000 } = {}) {
    this.timeoutMs = timeoutMs;
    this.memoryMb = memoryMb;
    this.loadTimeoutMs = loadTimeoutMs;
    this.warm = {}; // a started worker per language, reused until it is stopped
  }

  // A worker that said "ready"; Python's first start loads Pyodide (seconds).
  start(language) {
    if (this.warm[language]) return this.warm[language];
    const worker = WORKERS[language](this.memoryMb);
    const ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the runtime did not start in time")), this.loadTimeoutMs);
      worker.addEventListener("message", function first(event) {
        if (event.data.type === "ready") {
          clearTimeout(timer);
          worker.removeEventListener("message", first);
          resolve(worker);
        } else if (event.data.type === "failed") {
          clearTimeout(timer);
          reject(new Error(event.data.error));
        }
      });
      worker.addEventListener("error", (event) => {
        clearTimeout(timer);
        reject(new Error(event.message || "the runtime failed to load"));
      });
    });
    this.warm[language] = ready;
    ready.catch(() => this.stop(language, worker));
    return ready;
  }

  stop(language, worker) {
    worker.terminate();
    delete this.warm[language];
  }

  // Runs `source` and calls `fn` with each test's args (no `fn`: only runs it, status `ran`).
  // Resolves with
  // {status: passed|failed|error|timeout|memory, message, output, tests: [{passed, got, error}], ms}.
  async run(language, { source, fn, tests }, onOutput = () => {}) {
    let worker;
    try {
      worker = await this.start(language);
    } catch (error) {
      return { status: "error", message: t("Could not start {language}: {error}", { language, error: error.message }), output: "", tests: [], ms: 0 };
    }
    let output = "";
    const began = performance.now();
    return new Promise((resolve) => {
      const finish = (result) => {
        clearTimeout(timer);
        worker.removeEventListener("message", listen);
        resolve({ output: output.slice(0, MAX_OUTPUT), ms: Math.round(performance.now() - began), ...result });
      };
      const timer = setTimeout(() => {
        this.stop(language, worker);
        const seconds = this.timeoutMs / 1000;
        finish({ status: "timeout", message: t("Stopped: the code ran longer than {seconds} s (an endless loop?).", { seconds }), tests: [] });
      }, this.timeoutMs);
      const listen = (event) => {
        const data = event.data;
        if (data.type === "output") {
          if (output.length < MAX_OUTPUT) {
            output += `${data.text}\n`;
            onOutput(output);
          }
        } else if (data.type === "done") {
          let message = data.error || "";
          // Python caught its MemoryError: the worker stays usable.
          if (data.status === "memory") message = t("Stopped: the code needed more than {mb} MB of memory.", { mb: this.memoryMb });
          finish({ status: data.status, message, tests: data.tests || [] });
        }
      };
      worker.addEventListener("message", listen);
      worker.addEventListener("error", (event) => {
        this.stop(language, worker);
        const ranOut = t("it ran out of memory");
        finish({ status: "error", message: t("The sandbox stopped: {reason}.", { reason: event.message || ranOut }), tests: [] });
      }, { once: true });
      worker.postMessage({ source, function: fn, tests });
    });
  }
}
