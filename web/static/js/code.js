// The shared code editor of the technical part: one Yjs document per interview (a text per
// coding question), kept in step through the signaling WebSocket (code-sync, code-update,
// code-cursor) and stored by the server; CodeMirror 6 shows it with both people's cursors.
import { t } from "./i18n.js";
import {
  Awareness,
  EditorView,
  Y,
  applyAwarenessUpdate,
  basicSetup,
  encodeAwarenessUpdate,
  javascript,
  python,
  yCollab,
} from "/static/vendor/editor.js";
import { Sandbox } from "./sandbox.js";

const REMOTE = "remote";
const THEME = EditorView.theme({
  "&": { minHeight: "12rem", maxHeight: "28rem", backgroundColor: "#fff", fontSize: "0.9rem" },
  ".cm-scroller": { overflow: "auto", fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" },
});
const LANGUAGES = { python, javascript };
const COLORS = { recruiter: "#1a73e8", candidate: "#d93025" };

export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// The interview's document on this page, synced with the server over `signaling`.
export class SharedCode extends EventTarget {
  constructor({ signaling, name, role }) {
    super();
    this.signaling = signaling;
    this.doc = new Y.Doc();
    this.awareness = new Awareness(this.doc);
    const color = COLORS[role] || "#188038";
    this.awareness.setLocalStateField("user", { name, color, colorLight: `${color}33` });
    this.synced = false;
    this.doc.on("update", (update, origin) => {
      if (origin !== REMOTE) this.signaling.send({ type: "code-update", update: toBase64(update) });
    });
    // Cursor moves are sent at most every 50 ms (the server limits messages per second).
    this.cursorTimer = null;
    this.awareness.on("update", (_changes, origin) => {
      if (origin === REMOTE || this.cursorTimer) return;
      this.cursorTimer = setTimeout(() => {
        this.cursorTimer = null;
        this.sendAwareness();
      }, 50);
    });
    // A dropped message (rate limit, a socket that closed under it) is caught up by a sync:
    // the server answers with its state vector and the page sends what it lacks.
    signaling.addEventListener("error", (e) => {
      if (e.detail.code === "rate_limited") setTimeout(() => this.sync(), 1000);
    });
    setInterval(() => this.synced && this.sync(), 15000);
    signaling.addEventListener("joined", () => this.sync());
    signaling.addEventListener("presence", () => this.sendAwareness()); // someone (re)joined
    signaling.addEventListener("code-sync", (e) => {
      Y.applyUpdate(this.doc, fromBase64(e.detail.update), REMOTE);
      // Whatever this page typed while the server did not hear it (offline, reconnecting).
      const missing = Y.encodeStateAsUpdate(this.doc, fromBase64(e.detail.state));
      if (missing.length > 2) this.signaling.send({ type: "code-update", update: toBase64(missing) });
      this.synced = true;
      this.sendAwareness();
      this.dispatchEvent(new Event("synced"));
    });
    signaling.addEventListener("code-update", (e) => Y.applyUpdate(this.doc, fromBase64(e.detail.update), REMOTE));
    signaling.addEventListener("code-cursor", (e) => applyAwarenessUpdate(this.awareness, fromBase64(e.detail.awareness), REMOTE));
    if (signaling.joinedInfo) this.sync();
  }

  sync() {
    this.synced = false;
    this.signaling.send({ type: "code-sync", state: toBase64(Y.encodeStateVector(this.doc)) });
  }

  sendAwareness(clients = [this.doc.clientID]) {
    this.signaling.send({ type: "code-cursor", awareness: toBase64(encodeAwarenessUpdate(this.awareness, clients)) });
  }

  text(position) {
    return this.doc.getText(`q${position}`);
  }
}

function describe(test) {
  return `${test.fn}(${test.args.map((a) => JSON.stringify(a)).join(", ")}) → ${JSON.stringify(test.expected)}`;
}

const STATUS_TEXT = {
  passed: t("All tests passed."),
  failed: t("Some tests failed."),
  error: t("The code raised an error."),
  timeout: t("Stopped: time limit."),
  memory: t("Stopped: memory limit."),
};

// The code panel beside the call: the editor of the question on screen, and the test runs.
// The candidate runs the visible tests; the recruiter sees those runs live and runs the hidden
// tests, which never reach the candidate's page.
export class CodePanel {
  constructor({ signaling, role, name, root, timeoutMs = 5000, memoryMb = 256 }) {
    this.role = role;
    this.root = root;
    this.signaling = signaling;
    this.shared = new SharedCode({ signaling, name, role });
    this.sandbox = new Sandbox({ timeoutMs, memoryMb });
    this.question = null;
    this.view = null;
    this.running = false;
    signaling.addEventListener("code-run", (e) => this.showRun(e.detail, t("Candidate's run")));
    signaling.addEventListener("code-tests", (e) => this.showHidden(e.detail));
  }

  show(question) {
    if (!question || !question.code) {
      this.root.classList.add("hidden");
      this.destroy();
      this.question = null;
      return;
    }
    this.root.classList.remove("hidden");
    if (this.question && this.question.position === question.position && this.view) return;
    this.destroy();
    this.question = question;
    this.render();
  }

  destroy() {
    if (this.view) this.view.destroy();
    this.view = null;
  }

  render() {
    const q = this.question;
    const code = q.code;
    const editor = el("div", { class: "code-editor", id: "code-editor", "data-position": q.position });
    const runButton = el("button", { type: "button", class: "primary", id: this.role === "candidate" ? "code-run" : "code-run-hidden" },
      this.role === "candidate" ? t("Run tests") : t("Run hidden tests"));
    runButton.addEventListener("click", () => (this.role === "candidate" ? this.runVisible() : this.runHidden()));
    const parts = [
      el("div", { class: "code-head" },
        el("h2", { id: "code-title" }, t("Code")),
        el("span", { class: "badge", id: "code-language" }, code.language),
        el("span", { class: "muted" }, " " + t("write {name}()", { name: code.function })),
      ),
      editor,
      el("div", { class: "actions" }, runButton),
      el("p", { id: "code-status", class: "status", role: "status", "aria-live": "polite" }),
      el("h3", {}, this.role === "candidate" ? t("Tests") : t("Visible tests")),
      el("ul", { id: "code-tests", class: "code-tests" },
        ...code.tests.map((t, i) => el("li", { id: `code-test-${i}` }, describe({ ...t, fn: code.function })))),
      el("pre", { id: "code-output", class: "code-output", "aria-label": t("Output") }),
      this.role === "recruiter"
        ? el("section", { id: "code-hidden", class: "code-hidden" },
            el("h3", {}, t("Hidden tests ({count})", { count: (code.hidden_tests || []).length })),
            el("p", { id: "code-hidden-result", class: "muted" }, t("Not run yet.")))
        : null,
    ];
    this.root.replaceChildren(...parts.filter(Boolean));
    const ytext = this.shared.text(q.position);
    const undoManager = new Y.UndoManager(ytext);
    // In a shadow root, CodeMirror's styles go into a constructed style sheet: the site's CSP
    // (style-src 'self') blocks the <style> element it would add to the document.
    const shadow = editor.attachShadow({ mode: "open" });
    this.view = new EditorView({
      doc: ytext.toString(),
      extensions: [
        basicSetup,
        THEME,
        (LANGUAGES[code.language] || python)(),
        yCollab(ytext, this.shared.awareness, { undoManager }),
      ],
      parent: shadow,
      root: shadow,
    });
    this.runButton = runButton;
  }

  source() {
    return this.shared.text(this.question.position).toString();
  }

  setStatus(text, status) {
    const box = document.getElementById("code-status");
    if (!box) return;
    box.textContent = text;
    box.dataset.status = status || "";
  }

  async runVisible() {
    if (this.running || !this.question) return;
    const q = this.question;
    this.running = true;
    this.runButton.disabled = true;
    this.setStatus(q.code.language === "python" ? t("Running (Python starts in a few seconds the first time)…") : t("Running…"), "running");
    document.getElementById("code-output").textContent = "";
    const result = await this.sandbox.run(
      q.code.language,
      { source: this.source(), fn: q.code.function, tests: q.code.tests },
      (output) => (document.getElementById("code-output").textContent = output),
    );
    this.running = false;
    if (this.runButton) this.runButton.disabled = false;
    if (this.question !== q) return;
    const report = {
      type: "code-run",
      position: q.position,
      language: q.code.language,
      status: result.status,
      output: [result.output, result.message].filter(Boolean).join("\n").slice(0, 8000),
      tests: result.tests.map((t) => ({ passed: !!t.passed, got: t.got ?? null, error: t.error ?? null })),
      ms: result.ms,
    };
    this.showRun(report, "", result.message);
    this.signaling.send(report);
  }

  // A run's result: on the candidate's page their own, on the recruiter's the candidate's.
  showRun(run, label = "", message = "") {
    if (!this.question || run.position !== this.question.position) return;
    const passed = run.tests.filter((t) => t.passed).length;
    const tally = t("{passed}/{total} tests passed ({ms} ms).", { passed, total: run.tests.length, ms: run.ms });
    const counts = run.tests.length ? " " + tally : "";
    const what = (run.status === "passed" || run.status === "failed" ? "" : message) || STATUS_TEXT[run.status] || run.status;
    const text = `${label ? `${label}: ` : ""}${what}${counts}`;
    this.setStatus(text, run.status);
    const output = document.getElementById("code-output");
    if (output) output.textContent = run.output || "";
    run.tests.forEach((t, i) => {
      const item = document.getElementById(`code-test-${i}`);
      if (!item) return;
      item.dataset.passed = t.passed ? "true" : "false";
      item.dataset.result = t.passed ? "passed" : t.error ? `error: ${t.error}` : `got ${t.got}`;
      item.title = item.dataset.result;
    });
  }

  async runHidden() {
    if (this.running || !this.question) return;
    const q = this.question;
    const hidden = q.code.hidden_tests || [];
    this.running = true;
    this.runButton.disabled = true;
    const box = document.getElementById("code-hidden-result");
    box.textContent = t("Running the hidden tests in this browser…");
    const result = await this.sandbox.run(q.code.language, { source: this.source(), fn: q.code.function, tests: hidden });
    this.running = false;
    if (this.runButton) this.runButton.disabled = false;
    if (this.question !== q) return;
    const failing = [];
    result.tests.forEach((t, i) => {
      if (t.passed) return;
      failing.push({
        args: JSON.stringify(hidden[i].args).slice(0, 1000),
        expected: JSON.stringify(hidden[i].expected).slice(0, 1000),
        got: t.got ?? null,
        error: t.error ?? null,
      });
    });
    const report = {
      type: "code-tests",
      position: q.position,
      status: result.status,
      passed: result.tests.filter((t) => t.passed).length,
      total: hidden.length,
      failing: result.status === "passed" || result.status === "failed" ? failing : [],
      ms: result.ms,
    };
    if (result.message) box.dataset.message = result.message;
    this.showHidden(report, result.message);
    this.signaling.send(report);
  }

  showHidden(report, message = "") {
    const box = document.getElementById("code-hidden-result");
    if (!box || !this.question || report.position !== this.question.position) return;
    box.className = report.status === "passed" ? "ok" : "bad";
    box.dataset.status = report.status;
    const summary = t("Hidden tests: {passed}/{total} passed.", { passed: report.passed, total: report.total });
    const lines = [message ? summary + " " + message : summary];
    for (const f of report.failing) {
      const call = `${this.question.code.function}(${f.args.slice(1, -1)})`;
      const outcome = f.error ? f.error : t("got {value}", { value: f.got });
      const line = t("{call} expected {expected}, {outcome}", { call, expected: f.expected, outcome });
      lines.push("✗ " + line);
    }
    box.textContent = lines.join("\n");
  }
}
