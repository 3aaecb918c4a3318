// The results page's code replay: a scrubber per coding question plays the shared code as it
// was typed; playing the candidate's recording moves the code along with it, and letting go of
// the scrubber moves the recording to that moment.
import { Y } from "/static/vendor/editor.js";
import { fromBase64 } from "./code.js";

const root = document.getElementById("results");
const players = [...document.querySelectorAll("audio.candidate-player")];

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function start() {
  const response = await fetch(`/api/interviews/${root.dataset.interview}/code-replay`, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const data = await response.json();
  const seeds = Object.values(data.seeds).map(fromBase64);
  const edits = data.edits.map((e) => ({ t: e.t, update: fromBase64(e.u) }));
  const end = edits.length ? edits[edits.length - 1].t : 0;

  for (const box of document.querySelectorAll(".code-replay")) {
    const position = box.dataset.position;
    const range = box.querySelector("input[type=range]");
    const time = box.querySelector(".replay-time");
    const pre = box.querySelector("pre");
    range.max = String(Math.max(0, end));
    range.value = range.max;
    range.disabled = false;
    const show = () => {
      const at = Number(range.value);
      const doc = new Y.Doc();
      for (const seed of seeds) Y.applyUpdate(doc, seed);
      for (const edit of edits) {
        if (edit.t > at) break;
        Y.applyUpdate(doc, edit.update);
      }
      pre.textContent = doc.getText(`q${position}`).toString();
      time.textContent = `${clock(at)} / ${clock(end)}`;
      box.dataset.at = String(at);
    };
    range.addEventListener("input", show);
    range.addEventListener("change", () => {
      const ts = data.origin_ts + Number(range.value);
      for (const player of players) {
        const begin = Number(player.dataset.start);
        if (ts >= begin && ts <= begin + Number(player.dataset.duration)) player.currentTime = ts - begin;
      }
    });
    for (const player of players) {
      player.addEventListener("timeupdate", () => {
        if (player.paused) return;
        const at = Number(player.dataset.start) + player.currentTime - data.origin_ts;
        range.value = String(Math.min(end, Math.max(0, at)));
        show();
      });
    }
    show();
  }
}

start();
