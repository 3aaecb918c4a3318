// The recruiter's stage panel: Interview plan, technical questions, Finish interview, and notes.

import { api } from "./api.js";
import { t, language } from "./i18n.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const DIFFICULTY = { easy: t("easy"), medium: t("medium"), hard: t("hard") };

export class StagePanel {
  constructor({ interviewId, csrf, root, errorBox }) {
    this.interviewId = interviewId;
    this.csrf = csrf;
    this.root = root;
    this.errorBox = errorBox;
    this.view = null;
    this.live = {}; // live transcript text by question, kept across re-renders and page loads
    this.busy = false;
    this.saving = Promise.resolve();
  }

  async request(path, body) {
    return api(`/api/interviews/${this.interviewId}${path}`, { csrf: this.csrf, body });
  }

  // Whether a candidate-side stage event shows something else than this panel.
  differs(data) {
    if (!this.view) return true;
    if (data.state !== this.view.state) return true;
    if ((data.scratch || null) !== (this.view.scratch || null)) return true;
    const mine = this.view.question ? this.view.question.position : null;
    const theirs = data.question ? data.question.position : null;
    return mine !== theirs;
  }

  async refresh() {
    try {
      this.render(await this.request("/stage"));
    } catch (error) {
      this.errorBox.textContent = t("Could not load the interview: {error}", { error: error.message });
    }
  }

  // Topic ticks never get lost: each waits for the previous one, none is dropped.
  saveTopic(topicId, checked) {
    this.saving = this.saving.then(async () => {
      try {
        const view = await this.request(`/topics/${topicId}`, { checked });
        this.errorBox.textContent = "";
        if (!this.busy) this.render(view);
      } catch (error) {
        this.errorBox.textContent = t("The topic was not saved: {error}", { error: error.message });
        this.refresh();
      }
    });
    return this.saving;
  }

  async act(path, body = {}) {
    if (this.busy) return;
    this.busy = true;
    this.errorBox.textContent = "";
    this.root.setAttribute("aria-busy", "true");
    try {
      this.render(await this.request(path, body));
    } catch (error) {
      this.errorBox.textContent = error.message;
    } finally {
      this.busy = false;
      this.root.setAttribute("aria-busy", "false");
    }
  }

  render(view) {
    this.view = view;
    this.root.setAttribute("aria-busy", "false");
    this.root.dataset.state = view.state;
    const parts = {
      plan: () => this.plan(view),
      technical: () => this.technical(view),
      finishing: () => this.finishing(),
    };
    this.root.replaceChildren(...(parts[view.state] ? parts[view.state]() : []).filter(Boolean));
    this.dispatchState(view);
  }

  dispatchState(view) {
    this.root.dispatchEvent(new CustomEvent("stagechange", { detail: view, bubbles: true }));
  }

  plan(view) {
    const done = view.topics.filter((t) => t.checked).length;
    return [
      el("h1", {}, t("Interview plan")),
      el("p", { class: "muted", id: "topics-progress" }, t("{done} of {total} topics completed. Discuss them in any order.", { done, total: view.topics.length })),
      el(
        "ul",
        { class: "topic-list" },
        view.topics.map((topic) =>
          el(
            "li",
            {},
            el("input", {
              type: "checkbox",
              id: `topic-${topic.id}`,
              checked: topic.checked,
              onchange: (e) => this.saveTopic(topic.id, e.target.checked),
            }),
            el("label", { for: `topic-${topic.id}` }, el("strong", {}, topic.title), el("span", { class: "muted" }, topic.prompt)),
          ),
        ),
      ),
      el("button", { type: "button", class: "primary", onclick: () => this.act("/technical") }, t("Start technical part")),
    ];
  }

  technical(view) {
    const q = view.question;
    const last = q.position === q.total;
    return [
      el("h1", {}, t("Technical part")),
      el("p", { class: "question-counter", id: "question-counter" }, t("Question: {position}/{total}", { position: q.position, total: q.total }), " ", el("span", { class: `badge ${q.difficulty}` }, DIFFICULTY[q.difficulty] || q.difficulty)),
      el("div", { class: "question panel" },
        el("h2", {}, t("Question")),
        el("p", { id: "question-text" }, q.text),
        el("h3", {}, t("Alternative explanation")),
        el("p", { id: "question-alternative" }, q.alternative),
        el("h3", {}, t("Answer")),
        el("p", { id: "question-answer" }, q.expected_answer),
        el("h3", {}, t("Key points")),
        el("ul", { class: "key-points" }, q.key_points.map((point) => el("li", {}, point))),
        q.code
          ? el("details", { id: "question-solution" }, el("summary", {}, t("Reference solution")), el("pre", { class: "code-output" }, q.code.solution))
          : null,
      ),
      this.assistantNotice(view),
      el("section", { class: "live-answer panel", "aria-labelledby": "transcript-title" },
        el("h3", { id: "transcript-title" }, t("Candidate's answer (live transcript)")),
        el("p", { id: "live-transcript", class: "transcript", "aria-live": "polite" }, this.live[q.position] || (view.answers[q.position] || {}).text || t("Listening…")),
      ),
      this.scoreList(view, q.position),
      el("div", { class: "actions" },
        el("button", { type: "button", disabled: q.position === 1, onclick: () => this.act("/question", { position: q.position - 1 }) }, t("Previous")),
        last
          ? el("button", { type: "button", class: "primary", onclick: () => this.act("/finish") }, t("Finish interview"))
          : el("button", { type: "button", class: "primary", onclick: () => this.act("/question", { position: q.position + 1 }) }, t("Next question")),
      ),
    ];
  }

  // Shown when transcription and scoring cannot run now (no worker, queue down).
  assistantNotice(view) {
    if (!view.assistant || view.assistant.ok) return null;
    return el("p", { class: "alert", id: "assistant-notice", role: "status" }, view.assistant.message);
  }

  finishing() {
    return [
      el("h1", {}, t("Finish interview")),
      this.assistantNotice(this.view),
      el("p", {}, t("Answer the candidate's questions, talk about the company, and summarize the meeting.")),
      el("p", { class: "muted" }, t("To finish completely, click the red phone icon.")),
      this.scoreList(this.view, null),
    ];
  }

  // The AI scores of the questions answered so far, newest first.
  scoreList(view, current) {
    const entries = Object.entries(view.answers || {})
      .map(([position, entry]) => [Number(position), entry])
      .filter(([position, entry]) => position !== current && entry.score !== undefined)
      .sort((a, b) => b[0] - a[0]);
    return el(
      "section",
      { class: "scores", "aria-labelledby": "scores-title", id: "scores" },
      el("h3", { id: "scores-title" }, t("AI scores")),
      entries.length
        ? el(
            "ul",
            {},
            entries.map(([position, entry]) => {
              const confidence = t("confidence {percent}%", { percent: Math.round((entry.confidence || 0) * 100) });
              return el(
                "li",
                { id: `score-${position}` },
                el("span", { class: "score-badge" }, `Q${position}: ${entry.score}/10`),
                entry.confidence !== undefined
                  ? el("span", { class: "muted confidence" }, ` ${confidence}`)
                  : null,
                " ",
                entry.rationale,
                entry.note ? el("span", { class: "muted" }, ` (${entry.note})`) : null,
                (entry.misconceptions || []).length
                  ? el("div", { class: "misconceptions" }, t("Misconception: {list}", { list: entry.misconceptions.join("; ") }))
                  : null,
                entry.check
                  ? el(
                      "div",
                      { class: "alert check-answer" },
                      el("strong", {}, t("Check this answer")),
                      ` (${confidence})`,
                      entry.doubt ? `: “${entry.doubt}”` : "",
                    )
                  : null,
                entry.follow_up ? el("div", { class: "muted" }, t("Follow-up: {question}", { question: entry.follow_up })) : null,
              );
            }),
          )
        : el("p", { class: "muted" }, t("Each answer is scored when you move on.")),
    );
  }

  onTranscript(data) {
    this.live[data.position] = data.text; // may come before the first view (a reloaded page)
    if (!this.view) return;
    this.view.answers = this.view.answers || {};
    const entry = (this.view.answers[data.position] = this.view.answers[data.position] || {});
    entry.text = data.text;
    const box = document.getElementById("live-transcript");
    if (box && this.view.question && this.view.question.position === data.position) box.textContent = data.text || t("Listening…");
  }

  onScore(data) {
    if (!this.view) return;
    this.view.answers = this.view.answers || {};
    this.view.answers[data.position] = { ...(this.view.answers[data.position] || {}), ...data };
    const list = document.getElementById("scores");
    if (list) list.replaceWith(this.scoreList(this.view, this.view.question ? this.view.question.position : null));
  }
}

// Interview notes: saved as you type (debounced), kept in this browser until the server has
// them, and flushed with sendBeacon when the page goes away.
export class NotesAutosave {
  constructor({ interviewId, csrf, textarea, status, delay = 800 }) {
    this.url = `/api/interviews/${interviewId}/notes`;
    this.key = `p2pi-notes-${interviewId}`;
    this.csrf = csrf;
    this.textarea = textarea;
    this.status = status;
    this.delay = delay;
    this.timer = null;
    this.saved = null;
    textarea.addEventListener("input", () => this.changed());
    window.addEventListener("pagehide", () => this.flushOnExit());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") this.flushOnExit();
    });
  }

  load(serverText) {
    const pending = localStorage.getItem(this.key);
    this.saved = serverText;
    if (pending !== null && pending !== serverText) {
      // Unsaved text from before a reload or crash: keep it and save it now.
      this.textarea.value = pending;
      this.save();
    } else {
      this.textarea.value = serverText;
      localStorage.removeItem(this.key);
      this.status.textContent = serverText ? t("All notes saved.") : "";
    }
  }

  changed() {
    localStorage.setItem(this.key, this.textarea.value);
    this.status.textContent = t("Saving…");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), this.delay);
  }

  async save() {
    clearTimeout(this.timer);
    const text = this.textarea.value;
    try {
      const data = await api(this.url, { csrf: this.csrf, body: { text } });
      this.saved = text;
      if (this.textarea.value === text) localStorage.removeItem(this.key);
      this.status.textContent = t("All notes saved at {time}.", { time: new Date(data.saved_at).toLocaleTimeString(language) });
      this.status.dataset.saved = "true";
    } catch (error) {
      this.status.textContent = t("Not saved yet ({error}); retrying. Your text is kept in this browser.", { error: error.message });
      this.status.dataset.saved = "false";
      this.timer = setTimeout(() => this.save(), 3000);
    }
  }

  flushOnExit() {
    if (this.textarea.value === this.saved) return;
    const form = new URLSearchParams({ text: this.textarea.value, csrf_token: this.csrf });
    navigator.sendBeacon(this.url, form);
  }
}
