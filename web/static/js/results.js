// The results page: transcript lines seek the candidate's player, the line being played is
// highlighted, the recruiter's own scores are saved, and the report prints.

import { api } from "./api.js";
import { t } from "./i18n.js";

const root = document.getElementById("results");
const interviewId = root.dataset.interview;
const csrf = document.getElementById("csrf").value;
const players = [...document.querySelectorAll("audio.candidate-player")];
const segments = [...document.querySelectorAll("button.segment")];

// The candidate's recording may be in several parts (after a reconnect): the one that holds
// wall-clock time `ts` is the last to start before it (parts follow each other; the stored
// duration of the last one may lag its file by a few seconds right after the interview).
function seekTo(ts) {
  let holder = null;
  for (const player of players) {
    const start = Number(player.dataset.start);
    if (ts >= start - 0.5 && (!holder || start > Number(holder.dataset.start))) holder = player;
  }
  if (!holder) return false;
  players.forEach((other) => other !== holder && other.pause());
  holder.currentTime = Math.max(0, ts - Number(holder.dataset.start));
  holder.play().catch(() => {});
  return true;
}

// Gaps in a recording (audio lost on the way) on the bar under its player; placed from here,
// since the page's style policy allows no inline styles.
for (const gap of document.querySelectorAll(".gap-timeline .gap")) {
  gap.style.left = `${gap.dataset.left}%`;
  gap.style.width = `${gap.dataset.width}%`;
}

for (const button of document.querySelectorAll("button.seek")) {
  button.addEventListener("click", () => {
    if (button.dataset.ts) seekTo(Number(button.dataset.ts));
  });
}

for (const player of players) {
  player.addEventListener("timeupdate", () => {
    const now = Number(player.dataset.start) + player.currentTime;
    for (const segment of segments) {
      const playing = now >= Number(segment.dataset.ts) && now < Number(segment.dataset.end);
      segment.classList.toggle("playing", playing);
      if (playing) segment.setAttribute("aria-current", "true");
      else segment.removeAttribute("aria-current");
    }
  });
}

for (const button of document.querySelectorAll("button.save-override")) {
  button.addEventListener("click", async () => {
    const position = button.dataset.position;
    const input = document.getElementById(`override-${position}`);
    const status = button.parentElement.querySelector(".override-status");
    const value = input.value === "" ? null : Number(input.value);
    status.textContent = t("Saving…");
    try {
      const body = await api(`/api/interviews/${interviewId}/scores/${position}`, {
        csrf,
        body: { override: value },
      });
      status.textContent = value === null ? t("Your score removed; the AI's score counts.") : t("Saved.");
      const badge = document.getElementById(`score-${position}`);
      if (badge) badge.textContent = `${value === null ? body.ai : value}/10`;
    } catch (error) {
      status.textContent = t("Not saved: {error}", { error: error.message });
    }
  });
}

// An answer still being transcribed (its job has not finished): check every few seconds and
// show the page again once it is stored, unless that would lose something typed or cut off a
// recording being played.
let typing = false; // a score, the verdict or its note
document.addEventListener("input", () => (typing = true));
document.addEventListener("change", () => (typing = true));
if (document.querySelector(".pending-transcript")) {
  const check = async () => {
    try {
      const response = await fetch(`/api/interviews/${interviewId}/result`, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const result = await response.json();
        if (!result.questions.some((q) => q.pending)) {
          const listening = players.some((player) => !player.paused);
          if (!typing && !listening) return window.location.reload();
          for (const note of document.querySelectorAll(".pending-transcript")) note.textContent = t("Transcribed: reload the page to see it.");
          return;
        }
      }
    } catch {
      // The server is restarting or the network dropped: try again at the next tick.
    }
    setTimeout(check, 3000);
  };
  setTimeout(check, 3000);
}

document.getElementById("print-report").addEventListener("click", () => window.print());
document.getElementById("delete-form").addEventListener("submit", (event) => {
  if (!window.confirm(t("Delete this interview, its recordings and transcripts for good?"))) event.preventDefault();
});
