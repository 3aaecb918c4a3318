// The recruiter's interview room: the call with the candidate, and the red phone that ends it.
import { api } from "./api.js";
import { startCallOnPage } from "./call.js";
import { explainMediaError, openMedia } from "./devices.js";
import { Signaling } from "./signaling.js";
import { NotesAutosave, StagePanel } from "./stage.js";
import { LaterCode } from "./code-later.js";
import { t } from "./i18n.js";

const room = document.getElementById("room");
const interviewId = Number(room.dataset.interview);
const candidateName = room.dataset.candidateName;
const csrf = document.getElementById("csrf").value;
const callState = document.getElementById("call-state");
const mediaError = document.getElementById("media-error");

const signaling = new Signaling({ role: "recruiter", interview: interviewId });
let call = null;
let recording = null;
let lastPresence = null;

signaling.addEventListener("joined", (e) => (lastPresence = e.detail.presence));
signaling.addEventListener("presence", (e) => (lastPresence = e.detail));
const stage = new StagePanel({
  interviewId,
  csrf,
  root: document.getElementById("stage"),
  errorBox: document.getElementById("stage-error"),
});
const code = new LaterCode({
  signaling,
  role: "recruiter",
  name: room.dataset.interviewerName || "Interviewer",
  onScratchChange: (language) => stage.act("/scratch", { language }),
});
const IN_CALL = new Set(["plan", "technical", "finishing"]);
const notes = new NotesAutosave({
  interviewId,
  csrf,
  textarea: document.getElementById("notes"),
  status: document.getElementById("notes-status"),
});
let notesLoaded = false;
document.getElementById("stage").addEventListener("stagechange", (e) => {
  if (!notesLoaded) {
    notesLoaded = true;
    notes.load(e.detail.notes);
  }
  code.show(e.detail.question, e.detail.scratch, IN_CALL.has(e.detail.state));
  if (e.detail.state === "completed") showCompleted();
});
window.p2pStage = stage;
stage.refresh();

signaling.addEventListener("event", (e) => {
  if (e.detail.name === "transcript") stage.onTranscript(e.detail.data);
  else if (e.detail.name === "score") stage.onScore(e.detail.data);
  else if (e.detail.name === "state" && e.detail.data.state === "completed") showCompleted();
  // Another tab of this recruiter moved the interview on: follow it. (Not while this page's own
  // move is in flight: its answer renders the new stage, and a refresh then would show the next
  // question while the Next button still ignores clicks.)
  else if (e.detail.name === "stage" && stage.view && !stage.busy && stage.differs(e.detail.data)) stage.refresh();
});
signaling.connect();

async function start() {
  let stream;
  try {
    stream = await openMedia();
  } catch (error) {
    mediaError.textContent = explainMediaError(error);
    stream = new MediaStream();
  }
  ({ call, recording } = startCallOnPage({
    signaling,
    stream,
    role: "recruiter",
    leftText: t("Candidate left"),
    lastPresence,
    otherName: candidateName,
  }));
  code.loadAfterFirstFrame(document.getElementById("remote-video"));
  if (!lastPresence) callState.textContent = t("Waiting for {name}…", { name: candidateName });
}

function showCompleted() {
  if (recording) recording.stop();
  if (call) call.stop();
  signaling.close();
  const modal = document.getElementById("completed-modal");
  if (!modal.open) modal.showModal();
}

const confirmEnd = document.getElementById("confirm-end");
document.getElementById("hang-up").addEventListener("click", () => confirmEnd.showModal());
document.getElementById("confirm-end-no").addEventListener("click", () => confirmEnd.close());
document.getElementById("confirm-end-yes").addEventListener("click", async () => {
  const button = document.getElementById("confirm-end-yes");
  button.disabled = true;
  try {
    await api(`/interviews/${interviewId}/end`, { csrf, method: "POST" });
  } catch (error) {
    button.disabled = false;
    confirmEnd.close();
    mediaError.textContent = t("Could not end the interview: {error}", { error: error.message });
    return;
  }
  confirmEnd.close();
  await notes.save();
  showCompleted();
});

start();
