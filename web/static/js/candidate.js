// The candidate's page: equipment check, consents, Join, and the live link to the recruiter.
import { explainMediaError, fillSelect, listDevices, meterLevel, openMedia } from "./devices.js";
import { Signaling } from "./signaling.js";

const root = document.getElementById("candidate");
const token = root.dataset.token;
const interviewer = root.dataset.interviewer;
const preview = document.getElementById("preview");
const cameraSelect = document.getElementById("camera-select");
const micSelect = document.getElementById("microphone-select");
const level = document.getElementById("mic-level");
const deviceStatus = document.getElementById("device-status");
const retry = document.getElementById("retry-devices");
const joinButton = document.getElementById("join-button");
const joinError = document.getElementById("join-error");
const joinStatus = document.getElementById("join-status");
const consentBoxes = [...document.querySelectorAll("input[name=consent]")];
const csrf = document.getElementById("csrf").value;

let stream = null;
let stopMeter = null;
let heardSound = false;
let joined = false;

function updateJoinButton() {
  const consented = consentBoxes.every((box) => box.checked);
  joinButton.disabled = joined || !stream || !consented;
}

async function startDevices(ids = {}) {
  retry.classList.add("hidden");
  deviceStatus.classList.remove("ok", "bad");
  deviceStatus.textContent = "Asking the browser for your camera and microphone…";
  if (stopMeter) stopMeter();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  try {
    stream = await openMedia(ids);
  } catch (error) {
    deviceStatus.textContent = explainMediaError(error);
    deviceStatus.classList.add("bad");
    retry.classList.remove("hidden");
    updateJoinButton();
    return;
  }
  preview.srcObject = stream;
  const { cameras, microphones } = await listDevices();
  const videoTrack = stream.getVideoTracks()[0];
  const audioTrack = stream.getAudioTracks()[0];
  fillSelect(cameraSelect, cameras, videoTrack && videoTrack.getSettings().deviceId, "Camera");
  fillSelect(micSelect, microphones, audioTrack && audioTrack.getSettings().deviceId, "Microphone");
  stopMeter = meterLevel(stream, (value) => {
    level.value = value;
    if (value > 0.02 && !heardSound) {
      heardSound = true;
      deviceStatus.textContent = stream.noCamera
        ? "Your microphone works. No camera was found: you can still join with audio only."
        : "Your camera and microphone work.";
    }
  });
  deviceStatus.classList.add("ok");
  deviceStatus.textContent = stream.noCamera
    ? "No camera was found: you can still join with audio only. Speak to test the microphone."
    : "Camera is on. Speak to test the microphone.";
  updateJoinButton();
}

const signaling = new Signaling({ role: "candidate", token });
signaling.addEventListener("joined", () => {
  // After a reconnect, say again that we are ready.
  if (joined) signaling.send({ type: "ready" });
});
signaling.addEventListener("error", (e) => {
  if (e.detail.code === "ended" || e.detail.code === "not_found") {
    signaling.close();
    location.reload();
    return;
  }
  joinError.textContent = e.detail.message;
});
signaling.addEventListener("event", (e) => {
  if (e.detail.name === "state") {
    joinStatus.textContent =
      e.detail.data.state === "completed"
        ? "The interview has ended. Thank you for your time."
        : `${interviewer} has started the interview.`;
  }
});
signaling.addEventListener("disconnected", () => {
  if (joined) joinStatus.textContent = "Connection to the server lost. Reconnecting…";
});
signaling.addEventListener("presence", () => {
  if (joined) joinStatus.textContent = `You have joined. ${interviewer} will start the interview shortly.`;
});
signaling.connect();

joinButton.addEventListener("click", async () => {
  joinError.textContent = "";
  joinButton.disabled = true;
  joinButton.textContent = "Joining…";
  try {
    const response = await fetch(`/i/${token}/join`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ consents: consentBoxes.filter((b) => b.checked).map((b) => b.value) }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || body.message || `The server answered ${response.status}.`);
  } catch (error) {
    joinError.textContent = `Could not join: ${error.message}`;
    joinButton.textContent = "Join";
    updateJoinButton();
    return;
  }
  joined = true;
  joinButton.textContent = "Joined";
  joinStatus.textContent = `You have joined. ${interviewer} will start the interview shortly.`;
  signaling.send({ type: "ready" });
});

consentBoxes.forEach((box) => box.addEventListener("change", updateJoinButton));
cameraSelect.addEventListener("change", () =>
  startDevices({ cameraId: cameraSelect.value, microphoneId: micSelect.value }),
);
micSelect.addEventListener("change", () =>
  startDevices({ cameraId: cameraSelect.value, microphoneId: micSelect.value }),
);
retry.addEventListener("click", () => startDevices());
startDevices();
