// The recruiter's waiting room: live candidate status, the candidate's network check and the
// Start interview button.
import { summaryFor } from "./network.js";
import { Signaling } from "./signaling.js";
import { t } from "./i18n.js";

const panel = document.getElementById("waiting");
const statusText = document.getElementById("candidate-status");
const connection = document.getElementById("connection-status");
const button = document.getElementById("start-button");
const network = document.getElementById("candidate-network");
const name = panel.dataset.candidateName;
let candidatePeer = null;

function show(ready) {
  statusText.textContent = ready
    ? t("Candidate {name} is ready and waiting", { name })
    : t("Candidate {name} has not joined yet", { name });
  statusText.classList.toggle("ok", ready);
  button.disabled = !ready;
  button.textContent = ready ? t("Start interview") : t("Waiting for the candidate…");
  panel.dataset.ready = String(ready);
}

const signaling = new Signaling({ role: "recruiter", interview: Number(panel.dataset.interview) });
function follow(presence) {
  const candidate = presence.candidate;
  show(candidate.ready);
  // A new page of the candidate's (or none) makes the last check stale; the new page sends its own.
  if (candidate.peer !== candidatePeer) {
    candidatePeer = candidate.peer;
    network.textContent = "";
    network.classList.remove("ok", "bad");
  }
}

signaling.addEventListener("joined", (e) => {
  connection.textContent = "";
  follow(e.detail.presence);
});
signaling.addEventListener("presence", (e) => follow(e.detail));
signaling.addEventListener("network-check", (e) => {
  if (e.detail.from !== candidatePeer) return;
  const summary = summaryFor(e.detail, name);
  network.textContent = summary.text;
  network.classList.remove("ok", "bad");
  network.classList.add(summary.ok ? "ok" : "bad");
});
signaling.addEventListener("event", (e) => {
  if (e.detail.name === "state") location.reload();
});
signaling.addEventListener("disconnected", () => {
  connection.textContent = t("Connection to the server lost. Reconnecting…");
});
signaling.addEventListener("error", (e) => {
  connection.textContent = e.detail.message;
});
signaling.connect();
