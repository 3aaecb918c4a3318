// The recruiter's waiting room: live candidate status and the Start interview button.
import { Signaling } from "./signaling.js";

const panel = document.getElementById("waiting");
const statusText = document.getElementById("candidate-status");
const connection = document.getElementById("connection-status");
const button = document.getElementById("start-button");
const name = panel.dataset.candidateName;

function show(ready) {
  statusText.textContent = ready
    ? `Candidate ${name} is ready and waiting`
    : `Candidate ${name} has not joined yet`;
  statusText.classList.toggle("ok", ready);
  button.disabled = !ready;
  button.textContent = ready ? "Start interview" : "Waiting for the candidate…";
  panel.dataset.ready = String(ready);
}

const signaling = new Signaling({ role: "recruiter", interview: Number(panel.dataset.interview) });
signaling.addEventListener("joined", (e) => {
  connection.textContent = "";
  show(e.detail.presence.candidate.ready);
});
signaling.addEventListener("presence", (e) => show(e.detail.candidate.ready));
signaling.addEventListener("event", (e) => {
  if (e.detail.name === "state") location.reload();
});
signaling.addEventListener("disconnected", () => {
  connection.textContent = "Connection to the server lost. Reconnecting…";
});
signaling.addEventListener("error", (e) => {
  connection.textContent = e.detail.message;
});
signaling.connect();
