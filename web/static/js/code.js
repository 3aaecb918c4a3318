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

// A CodeMirror editor of the shared text at `position`, with both people's cursors. In a shadow
// root, CodeMirror's styles go into a constructed style sheet: the site's CSP (style-src 'self')
// blocks the <style> element it would add to the document.
function editorIn(container, shared, position, language) {
  const ytext = shared.text(position);
  const shadow = container.attachShadow({ mode: "open" });
  return new EditorView({
    doc: ytext.toString(),
    extensions: [
      basicSetup,
      THEME,
      (LANGUAGES[language] || python)(),
      yCollab(ytext, shared.awareness, { undoManager: new Y.UndoManager(ytext) }),
    ],
    parent: shadow,
    root: shadow,
  });
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
  ran: t("Finished."),
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
    this.view = editorIn(editor, this.shared, q.position, code.language);
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

const SCRATCH = 0;
const SCRATCH_LANGUAGES = { python: "Python", javascript: "JavaScript" };

// The scratch pad: one more shared text (q0) that the recruiter opens on both pages at any
// moment of the call, in Python or JavaScript, to write and run code without tests. Each page
// runs it in its own browser; the candidate's runs reach the recruiter (and are stored).
export class ScratchPad {
  constructor({ panel, root, onChange = null }) {
    this.panel = panel; // the page's CodePanel: its shared document and signaling
    this.role = panel.role;
    this.root = root;
    this.onChange = onChange; // the recruiter's page: open, switch or close (language or null)
    this.sandbox = new Sandbox({ timeoutMs: panel.sandbox.timeoutMs, memoryMb: panel.sandbox.memoryMb });
    this.language = null;
    this.inCall = false;
    this.view = null;
    this.running = false;
    panel.signaling.addEventListener("code-run", (e) => {
      if (e.detail.position === SCRATCH) this.showRun(e.detail, t("Candidate's run"));
    });
  }

  // The pad as the server has it: open in `language`, or closed (null); only during the call.
  show(language, inCall = true) {
    const wanted = inCall ? language || null : null;
    if (wanted === this.language && inCall === this.inCall && this.root.childElementCount) return;
    this.language = wanted;
    this.inCall = inCall;
    this.root.dataset.language = wanted || "";
    this.render();
  }

  languageSelect(value) {
    const select = el("select", { id: "scratch-language", "aria-label": t("Language") },
      ...Object.entries(SCRATCH_LANGUAGES).map(([key, label]) => el("option", { value: key }, label)));
    select.value = value;
    return select;
  }

  render() {
    if (this.view) this.view.destroy();
    this.view = null;
    const recruiter = this.role === "recruiter";
    this.root.classList.toggle("hidden", !this.language && !(recruiter && this.inCall));
    if (!this.language) {
      if (!recruiter || !this.inCall) {
        this.root.replaceChildren();
        return;
      }
      const select = this.languageSelect("python");
      const open = el("button", { type: "button", id: "scratch-open" }, t("Open scratch pad"));
      open.addEventListener("click", () => this.onChange(select.value));
      this.root.replaceChildren(
        el("div", { class: "code-head" }, el("h2", { id: "scratch-title" }, t("Scratch pad")), select, open),
        el("p", { class: "muted" }, t("Write and run code with the candidate at any moment: the pad opens on both pages.")),
      );
      return;
    }
    const head = el("div", { class: "code-head" }, el("h2", { id: "scratch-title" }, t("Scratch pad")));
    if (recruiter) {
      const select = this.languageSelect(this.language);
      select.addEventListener("change", () => this.onChange(select.value));
      const close = el("button", { type: "button", id: "scratch-close" }, t("Close scratch pad"));
      close.addEventListener("click", () => this.onChange(null));
      head.append(select, close);
    } else {
      head.append(el("span", { class: "badge", id: "scratch-badge" }, this.language));
    }
    const editor = el("div", { class: "code-editor", id: "scratch-editor" });
    const run = el("button", { type: "button", class: "primary", id: "scratch-run" }, t("Run"));
    run.addEventListener("click", () => this.run());
    this.root.replaceChildren(
      head,
      editor,
      el("div", { class: "actions" }, run),
      el("p", { id: "scratch-status", class: "status", role: "status", "aria-live": "polite" }),
      el("pre", { id: "scratch-output", class: "code-output", "aria-label": t("Output") }),
    );
    this.runButton = run;
    this.view = editorIn(editor, this.panel.shared, SCRATCH, this.language);
  }

  async run() {
    if (this.running || !this.language) return;
    const language = this.language;
    this.running = true;
    this.runButton.disabled = true;
    const output = this.root.querySelector("#scratch-output");
    this.setStatus(language === "python" ? t("Running (Python starts in a few seconds the first time)…") : t("Running…"), "running");
    output.textContent = "";
    const source = this.panel.shared.text(SCRATCH).toString();
    const result = await this.sandbox.run(language, { source, fn: "", tests: [] }, (text) => (output.textContent = text));
    this.running = false;
    this.runButton.disabled = false;
    const report = {
      type: "code-run",
      position: SCRATCH,
      language,
      status: result.status,
      output: [result.output, result.message].filter(Boolean).join("\n").slice(0, 8000),
      tests: [],
      ms: result.ms,
    };
    this.showRun(report, "", result.message);
    if (this.role === "candidate") this.panel.signaling.send(report);
  }

  setStatus(text, status) {
    const box = this.root.querySelector("#scratch-status");
    if (!box) return;
    box.textContent = text;
    box.dataset.status = status || "";
  }

  showRun(run, label = "", message = "") {
    const output = this.root.querySelector("#scratch-output");
    if (!output) return;
    const what = (run.status === "ran" ? "" : message) || STATUS_TEXT[run.status] || run.status;
    const took = t("{ms} ms", { ms: run.ms });
    this.setStatus(`${label ? `${label}: ` : ""}${what} (${took})`, run.status);
    output.textContent = run.output || "";
  }
}
