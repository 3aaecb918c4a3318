// The candidate's page: equipment check, consents, Join, then the call once the interview starts.
import { api } from "./api.js";
import { startCallOnPage } from "./call.js";
import { explainMediaError, fillSelect, listDevices, meterLevel, openMedia } from "./devices.js";
import { adviceFor, checkNetwork } from "./network.js";
import { Signaling } from "./signaling.js";
import { LaterCode } from "./code-later.js";
import { t } from "./i18n.js";

const IN_CALL = new Set(["plan", "technical", "finishing"]);
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
const networkStatus = document.getElementById("network-status");
const networkRetry = document.getElementById("network-retry");

let state = root.dataset.state;
let stream = null;
let stopMeter = null;
let heardSound = false;
let joined = false;
let call = null;
let recording = null;

function updateJoinButton() {
  const consented = consentBoxes.every((box) => box.checked);
  joinButton.disabled = joined || !stream || !consented;
}

async function startDevices(ids = {}) {
  retry.classList.add("hidden");
  deviceStatus.classList.remove("ok", "bad");
  deviceStatus.textContent = t("Asking the browser for your camera and microphone…");
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
  fillSelect(cameraSelect, cameras, videoTrack && videoTrack.getSettings().deviceId, t("Camera"));
  fillSelect(micSelect, microphones, audioTrack && audioTrack.getSettings().deviceId, t("Microphone"));
  stopMeter = meterLevel(stream, (value) => {
    level.value = value;
    if (value > 0.02 && !heardSound) {
      heardSound = true;
      deviceStatus.textContent = stream.noCamera
        ? t("Your microphone works. No camera was found: you can still join with audio only.")
        : t("Your camera and microphone work.");
    }
  });
  deviceStatus.classList.add("ok");
  deviceStatus.textContent = stream.noCamera
    ? t("No camera was found: you can still join with audio only. Speak to test the microphone.")
    : t("Camera is on. Speak to test the microphone.");
  updateJoinButton();
  // Back after a reload during the interview, with consents already given: straight into the call.
  if (root.dataset.consented === "true" && IN_CALL.has(state) && !joined) {
    joined = true;
    signaling.send({ type: "ready" });
    startCall();
  }
}

function showStage(question, scratchLanguage) {
  code.show(question, scratchLanguage, IN_CALL.has(state));
  const text = {
    plan: t("{name} is talking with you about your experience and the topics of the interview.", { name: interviewer }),
    technical: t("Technical questions: answer out loud, in your own words."),
    finishing: t("Time for your questions to the interviewer. Thank you for your answers."),
  };
  document.getElementById("stage-text").textContent = text[state] || "";
  const box = document.getElementById("question-box");
  box.classList.toggle("hidden", !question);
  if (question) {
    document.getElementById("question-counter").textContent = t("Question: {position}/{total}", { position: question.position, total: question.total });
    document.getElementById("question-text").textContent = question.text;
  }
}

async function refreshStage() {
  try {
    const response = await fetch(`/i/${token}/stage`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const view = await response.json();
    state = view.state;
    if (state === "completed") endInterview();
    else showStage(view.question, view.scratch);
  } catch {
    /* the next event will try again */
  }
}

function startCall() {
  if (call || !stream) return;
  if (stopMeter) stopMeter();
  document.getElementById("lobby-view").classList.add("hidden");
  document.getElementById("call-view").classList.remove("hidden");
  ({ call, recording } = startCallOnPage({
    signaling,
    stream,
    role: "candidate",
    leftText: t("The interviewer left. Waiting for them to return…"),
    lastPresence,
    otherName: interviewer,
  }));
  code.loadAfterFirstFrame(document.getElementById("remote-video"));
  refreshStage();
}

function endInterview() {
  if (recording) recording.stop();
  if (call) call.stop();
  signaling.close();
  document.getElementById("lobby-view").classList.add("hidden");
  document.getElementById("call-view").classList.add("hidden");
  document.getElementById("ended-view").classList.remove("hidden");
}

// The network check: runs once the page is in the interview's room (it needs the ICE servers
// of the joined message and the server's peer); its result goes to each new recruiter page.
let networkResult = null;
let networkChecking = false;
let networkSentTo = null;

function reportNetwork() {
  const recruiter = lastPresence && lastPresence.recruiter;
  if (!networkResult || !recruiter || !recruiter.connected || !recruiter.peer) return;
  if (recruiter.peer === networkSentTo) return;
  if (signaling.send({ type: "network-check", ...networkResult, to: recruiter.peer })) networkSentTo = recruiter.peer;
}

async function runNetworkCheck() {
  if (networkChecking) return;
  networkChecking = true;
  networkRetry.classList.add("hidden");
  networkStatus.classList.remove("ok", "bad");
  networkStatus.textContent = t("Checking your network…");
  try {
    networkResult = await checkNetwork(signaling);
  } finally {
    networkChecking = false;
  }
  const advice = adviceFor(networkResult);
  networkStatus.textContent = advice.text;
  networkStatus.classList.add(advice.ok ? "ok" : "bad");
  networkStatus.dataset.result = JSON.stringify(networkResult);
  networkRetry.classList.remove("hidden");
  networkSentTo = null;
  reportNetwork();
}

let lastPresence = null;
const signaling = new Signaling({ role: "candidate", token });
const code = new LaterCode({ signaling, role: "candidate", name: root.dataset.candidate || "Candidate" });
signaling.addEventListener("joined", (e) => {
  lastPresence = e.detail.presence;
  state = e.detail.state;
  networkSentTo = null;
  // After a reconnect, say again that we are ready.
  if (joined) signaling.send({ type: "ready" });
  // (Not when the page comes back into a running interview: it goes straight into the call.)
  const backInCall = IN_CALL.has(state) && root.dataset.consented === "true";
  if (!networkResult && !call && !backInCall) runNetworkCheck();
  else reportNetwork();
});
signaling.addEventListener("presence", (e) => {
  lastPresence = e.detail;
  reportNetwork();
  if (joined && !call) joinStatus.textContent = t("You have joined. {name} will start the interview shortly.", { name: interviewer });
});
signaling.addEventListener("error", (e) => {
  if (e.detail.code === "ended") {
    endInterview();
    return;
  }
  if (e.detail.code === "not_found") {
    signaling.close();
    location.reload();
    return;
  }
  joinError.textContent = e.detail.message;
});
signaling.addEventListener("event", (e) => {
  if (e.detail.name !== "state" && e.detail.name !== "stage") return;
  state = e.detail.data.state;
  if (state === "completed") endInterview();
  else if (IN_CALL.has(state) && joined) startCall();
  if (e.detail.name === "stage") showStage(e.detail.data.question, e.detail.data.scratch);
  else refreshStage();
});
signaling.addEventListener("disconnected", () => {
  if (joined && !call) joinStatus.textContent = t("Connection to the server lost. Reconnecting…");
});
signaling.connect();

joinButton.addEventListener("click", async () => {
  joinError.textContent = "";
  joinButton.disabled = true;
  joinButton.textContent = t("Joining…");
  try {
    await api(`/i/${token}/join`, {
      csrf,
      body: { consents: consentBoxes.filter((b) => b.checked).map((b) => b.value) },
    });
  } catch (error) {
    joinError.textContent = t("Could not join: {error}", { error: error.message });
    joinButton.textContent = t("Join");
    updateJoinButton();
    return;
  }
  joined = true;
  root.dataset.consented = "true";
  joinButton.textContent = t("Joined");
  joinStatus.textContent = t("You have joined. {name} will start the interview shortly.", { name: interviewer });
  signaling.send({ type: "ready" });
  if (IN_CALL.has(state)) startCall();
});

consentBoxes.forEach((box) => box.addEventListener("change", updateJoinButton));
cameraSelect.addEventListener("change", () =>
  startDevices({ cameraId: cameraSelect.value, microphoneId: micSelect.value }),
);
micSelect.addEventListener("change", () =>
  startDevices({ cameraId: cameraSelect.value, microphoneId: micSelect.value }),
);
retry.addEventListener("click", () => startDevices());
networkRetry.addEventListener("click", () => runNetworkCheck());
startDevices();
