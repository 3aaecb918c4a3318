// The browser-to-browser call: one RTCPeerConnection with audio and video, negotiated over the
// signaling WebSocket. Only the recruiter's page makes offers; the candidate's page answers and,
// when it needs a (new) connection, asks for an offer with "restart". One offerer means no
// glare. Every message names the sending connection (`connection`), so after either page is
// reloaded stale answers and candidates of an older connection are recognised and dropped.
//
// Recovery: a connection that fails, or stays disconnected for a few seconds, gets an ICE
// restart (new candidates over the same connection, a few seconds); after MAX_RESTARTS
// restarts that did not bring it back, a fresh RTCPeerConnection. The state text says which.

import { QualityMonitor, pathIsBad, qualityMessage, selectedPair, serverPath, showQuality } from "./quality.js";
import { RecordingLink, showRecording } from "./recording.js";
import { t } from "./i18n.js";

const STATE_TEXT = {
  connecting: t("Connecting…"),
  connected: t("Connected"),
  reconnecting: t("Reconnecting…"),
};
const MAX_RESTARTS = 2;
const DISCONNECTED_MS = 3000; // how long "disconnected" may last before an ICE restart
const RESTART_MS = 8000; // how long an ICE restart may take before the next step
const FIRST_CONNECT_MS = 10000; // how long a new connection may take to come up

function newId() {
  return Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
}

export class Call extends EventTarget {
  constructor({ signaling, offerer, localStream, remoteVideo, otherRole }) {
    super();
    this.signaling = signaling;
    this.offerer = offerer;
    this.localStream = localStream;
    this.remoteVideo = remoteVideo;
    this.otherRole = otherRole; // "candidate" or "recruiter": whose peer id to follow
    // The joined message may have come before this call was made (the candidate's page joins
    // long before the interview starts): start from it.
    const joined = signaling.joinedInfo;
    this.iceServers = (joined && joined.ice_servers) || [];
    this.iceTransportPolicy = (joined && joined.ice_transport_policy) || "all";
    this.restarts = 0; // ICE restarts since the connection was last up
    this.pc = null;
    this.connection = null; // our current connection
    this.remoteConnection = null; // theirs, once known
    this.remotePeer = null;
    this.pending = []; // ICE candidates that came before their connection's description
    this.stopped = false;

    signaling.addEventListener("joined", (e) => {
      this.iceServers = e.detail.ice_servers || [];
      this.iceTransportPolicy = e.detail.ice_transport_policy || "all";
      this.follow(e.detail.presence);
    });
    signaling.addEventListener("presence", (e) => this.follow(e.detail));
    signaling.addEventListener("offer", (e) => this.onOffer(e.detail));
    signaling.addEventListener("answer", (e) => this.onAnswer(e.detail));
    signaling.addEventListener("ice", (e) => this.onCandidate(e.detail));
    signaling.addEventListener("restart", (e) => this.onRestart(e.detail));
    signaling.addEventListener("disconnected", () => {
      if (this.pc) this.setState("reconnecting");
    });
  }

  setState(state, text) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, text: text || STATE_TEXT[state] || state } }));
  }

  configuration() {
    return { iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy };
  }

  send(message) {
    this.signaling.send({ ...message, to: this.remotePeer, connection: this.connection });
  }

  // Presence tells us the other side's current page; a new peer id means a fresh connection.
  follow(presence) {
    if (this.stopped) return;
    const other = presence[this.otherRole];
    if (!other || !other.connected || !other.peer) {
      if (this.remotePeer) {
        this.closePeerConnection();
        this.remotePeer = null;
        this.setState("left");
      }
      return;
    }
    if (other.peer !== this.remotePeer) this.connectTo(other.peer);
  }

  connectTo(peer, text) {
    this.closePeerConnection();
    this.remotePeer = peer;
    this.connection = newId();
    this.remoteConnection = null;
    this.pending = [];
    this.connected = false;
    this.restarts = 0;
    this.setState(this.state === "connected" || this.state === "left" || text ? "reconnecting" : "connecting", text);
    const pc = new RTCPeerConnection(this.configuration());
    this.pc = pc;
    const remote = new MediaStream();
    this.remoteVideo.srcObject = remote;
    pc.ontrack = ({ track }) => {
      remote.addTrack(track);
      this.remoteVideo.play().catch(() => {});
    };
    pc.onicecandidate = ({ candidate }) => {
      if (pc === this.pc) this.send({ type: "ice", candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      if (pc !== this.pc) return;
      if (!this.offerer) {
        // Ask for an offer, unless one is already being answered.
        if (!this.remoteConnection) this.send({ type: "restart" });
        return;
      }
      try {
        await pc.setLocalDescription();
        if (pc === this.pc && pc.localDescription && pc.localDescription.type === "offer") {
          this.send({ type: "offer", sdp: pc.localDescription.sdp });
        }
      } catch (error) {
        console.warn("could not make an offer", error);
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        this.connected = true;
        this.restarts = 0;
        clearTimeout(this.watchdog);
        this.setState("connected");
      } else if (state === "disconnected") {
        this.setState("reconnecting", t("The connection is interrupted. Waiting for it to come back…"));
        this.armWatchdog(DISCONNECTED_MS);
      } else if (state === "failed") {
        this.setState("reconnecting", t("The connection was lost. Reconnecting…"));
        this.armWatchdog(0);
      }
    };
    for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
    this.armWatchdog(FIRST_CONNECT_MS);
  }

  // Not connected in time, or the network broke: an ICE restart (the recruiter's page makes it;
  // the candidate's page asks for it), and after MAX_RESTARTS of them a fresh connection.
  armWatchdog(delay) {
    clearTimeout(this.watchdog);
    const pc = this.pc;
    this.watchdog = setTimeout(() => {
      if (pc !== this.pc || this.stopped || pc.connectionState === "connected") return;
      if (this.connected && this.restarts < MAX_RESTARTS) {
        this.restarts += 1;
        this.setState("reconnecting", t("The connection was lost. Restoring it (try {n} of {max})…", { n: this.restarts, max: MAX_RESTARTS }));
        if (this.offerer) pc.restartIce();
        else this.send({ type: "restart" });
        this.armWatchdog(RESTART_MS);
      } else if (this.offerer || this.connected) {
        // Never up, or the restarts did not help: a new connection (the candidate's page asks
        // for one by making its own; the recruiter's page follows the new connection id).
        this.connectTo(this.remotePeer, this.connected ? t("Still no connection. Starting a new one…") : undefined);
      } else {
        this.send({ type: "restart" });
        this.armWatchdog(FIRST_CONNECT_MS);
      }
    }, delay);
  }

  onRestart(message) {
    if (!this.offerer || this.stopped || message.from !== this.remotePeer || !this.pc) return;
    const pc = this.pc;
    if (!this.remoteConnection) {
      // Our offer is not answered yet (it may have been lost): send it again.
      if (pc.localDescription && pc.localDescription.type === "offer") {
        this.send({ type: "offer", sdp: pc.localDescription.sdp });
      }
    } else if (message.connection !== this.remoteConnection) {
      // Their connection is new: so is ours (after a lost connection: say so).
      this.connectTo(this.remotePeer, this.state === "reconnecting" ? t("Still no connection. Starting a new one…") : undefined);
    } else if (pc.connectionState !== "connected") {
      pc.restartIce();
    }
  }

  async onOffer(message) {
    if (this.stopped || this.offerer) return;
    if (message.from !== this.remotePeer || (this.remoteConnection && message.connection !== this.remoteConnection)) {
      // Their page or connection is new: so is ours (after a lost connection: say so).
      const lost = message.from === this.remotePeer && this.state === "reconnecting";
      this.connectTo(message.from, lost ? t("Still no connection. Starting a new one…") : undefined);
    }
    const pc = this.pc;
    if (message.connection === this.remoteConnection && pc.remoteDescription && pc.remoteDescription.sdp === message.sdp) {
      // The same offer again (our answer was lost): answer again.
      if (pc.localDescription) this.send({ type: "answer", sdp: pc.localDescription.sdp, re: message.connection });
      return;
    }
    this.remoteConnection = message.connection;
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      this.flushPending();
      await pc.setLocalDescription();
      if (pc === this.pc) this.send({ type: "answer", sdp: pc.localDescription.sdp, re: message.connection });
    } catch (error) {
      console.warn("could not answer the offer", error);
    }
  }

  async onAnswer(message) {
    if (this.stopped || !this.offerer || !this.pc) return;
    if (message.from !== this.remotePeer || message.re !== this.connection) return; // an old offer's
    if (this.pc.signalingState !== "have-local-offer") return;
    this.remoteConnection = message.connection;
    try {
      await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      this.flushPending();
    } catch (error) {
      console.warn("could not apply the answer", error);
    }
  }

  async onCandidate(message) {
    if (!this.pc || message.from !== this.remotePeer) return;
    if (!this.remoteConnection || !this.pc.remoteDescription) {
      this.pending.push(message);
      return;
    }
    if (message.connection !== this.remoteConnection) return;
    await this.pc.addIceCandidate(message.candidate || null).catch(() => {});
  }

  flushPending() {
    const pending = this.pending;
    this.pending = [];
    for (const message of pending) {
      if (message.connection === this.remoteConnection) this.pc.addIceCandidate(message.candidate || null).catch(() => {});
    }
  }

  closePeerConnection() {
    clearTimeout(this.watchdog);
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.onnegotiationneeded = null;
      this.pc.close();
      this.pc = null;
    }
  }

  stop() {
    this.stopped = true;
    this.closePeerConnection();
    for (const track of this.localStream.getTracks()) track.stop();
  }

  // Which kinds of candidates the call runs over (getStats' selected pair), for tests and the
  // indicator: { local, remote, localTransport, remoteTransport, rttMs, relayed }.
  async selectedPair() {
    if (!this.pc) return null;
    return selectedPair(await this.pc.getStats());
  }

  // Totals of received audio and video bytes, for tests and the connection indicator.
  async inboundBytes() {
    const totals = { audio: 0, video: 0 };
    if (!this.pc) return totals;
    const stats = await this.pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind in totals) totals[report.kind] += report.bytesReceived;
    });
    return totals;
  }
}

// Mute, camera-off buttons: toggle the local tracks and the buttons' pressed state.
export function wireControls(stream, { muteButton, cameraButton }) {
  muteButton.addEventListener("click", () => {
    const track = stream.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    muteButton.setAttribute("aria-pressed", String(!track.enabled));
    muteButton.textContent = track.enabled ? t("Mute microphone") : t("Unmute microphone");
  });
  cameraButton.addEventListener("click", () => {
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    cameraButton.setAttribute("aria-pressed", String(!track.enabled));
    cameraButton.textContent = track.enabled ? t("Camera off") : t("Camera on");
  });
  if (!stream.getVideoTracks().length) cameraButton.disabled = true;
}

// The connection-quality indicator of the call, the page's quality sent to the other page, and
// the notice that says whose network is the trouble: a page whose own path to the server (its
// recording connection) is slow or lossy is the one with the bad network.
function watchQuality({ signaling, call, recording, otherName }) {
  const indicator = document.getElementById("call-quality");
  const notice = document.getElementById("network-notice");
  const callMonitor = new QualityMonitor(() => call.pc);
  const serverMonitor = new QualityMonitor(() => recording.pc);
  let theirs = null; // { report, at }: the other page's last quality message
  let serverUp = null; // this page's recording connection: null until it first came up
  function ownPath() {
    const up = Boolean(recording.pc && recording.pc.connectionState === "connected");
    if (up || serverUp !== null) serverUp = up;
    return serverPath(up ? serverMonitor.last : null, serverUp);
  }
  signaling.addEventListener("quality", (e) => {
    if (e.detail.from === call.remotePeer) theirs = { report: e.detail, at: Date.now() };
  });

  function explain() {
    const mine = ownPath();
    const socketUp = signaling.ws && signaling.ws.readyState === WebSocket.OPEN;
    let who = "";
    let text = "";
    if (!socketUp) {
      who = "self";
      text = t("Your connection to the server was lost. Reconnecting…");
    } else if (pathIsBad(mine)) {
      who = "self";
      text = t("Your network is unstable (slow, or losing data on the way): the call may freeze. A wired connection, or moving closer to the Wi-Fi, helps.");
    } else if (
      call.remotePeer &&
      theirs &&
      (pathIsBad(theirs.report) || (call.state === "reconnecting" && Date.now() - theirs.at > 8000))
    ) {
      who = "other";
      text = t("{name}'s network is unstable: the call may freeze or drop. Your own connection is fine.", { name: otherName });
    }
    notice.textContent = text;
    notice.dataset.who = who;
  }

  callMonitor.addEventListener("sample", (e) => {
    if (call.state === "connected") {
      showQuality(indicator, e.detail);
      indicator.classList.remove("hidden");
    } else {
      indicator.classList.add("hidden");
    }
    if (call.remotePeer) {
      signaling.send({ ...qualityMessage(e.detail, ownPath(), call.state), to: call.remotePeer });
    }
    explain();
  });
  call.addEventListener("state", (e) => {
    if (e.detail.state !== "connected") indicator.classList.add("hidden");
    explain();
  });
  signaling.addEventListener("disconnected", explain);
  callMonitor.start();
  serverMonitor.start();
  const watched = { call: callMonitor, server: serverMonitor, theirs: () => theirs };
  window.p2pQuality = watched;
  return watched;
}

// The call part of a page (the _call.html block): the call with the other person, the
// controls, the "Recording" indicator, the microphone's link to the server's recorder and the
// connection-quality indicator.
export function startCallOnPage({ signaling, stream, role, leftText, lastPresence, otherName }) {
  const callState = document.getElementById("call-state");
  document.getElementById("local-video").srcObject = stream;
  const call = new Call({
    signaling,
    offerer: role === "recruiter",
    localStream: stream,
    remoteVideo: document.getElementById("remote-video"),
    otherRole: role === "recruiter" ? "candidate" : "recruiter",
  });
  call.addEventListener("state", (e) => {
    callState.textContent = e.detail.state === "left" ? leftText : e.detail.text;
    callState.dataset.state = e.detail.state;
  });
  wireControls(stream, {
    muteButton: document.getElementById("mute-button"),
    cameraButton: document.getElementById("camera-button"),
  });
  window.p2pCall = call;
  showRecording(signaling, role, document.getElementById("recording-indicator"));
  const recording = new RecordingLink({ signaling, track: stream.getAudioTracks()[0] });
  window.p2pRecording = recording;
  recording.start();
  const quality = watchQuality({
    signaling,
    call,
    recording,
    otherName: otherName || (role === "recruiter" ? t("The candidate") : t("The interviewer")),
  });
  // The signaling socket may already be in the room: start from its last presence.
  if (lastPresence) call.follow(lastPresence);
  signaling.attachCall();
  return { call, recording, callState, quality };
}
