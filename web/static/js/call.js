// The browser-to-browser call: one RTCPeerConnection with audio and video, negotiated over the
// signaling WebSocket. Only the recruiter's page makes offers; the candidate's page answers and,
// when it needs a (new) connection, asks for an offer with "restart". One offerer means no
// glare. Every message names the sending connection (`connection`), so after either page is
// reloaded stale answers and candidates of an older connection are recognised and dropped.

import { RecordingLink, showRecording } from "./recording.js";

const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
};

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
    this.iceServers = [];
    this.pc = null;
    this.connection = null; // our current connection
    this.remoteConnection = null; // theirs, once known
    this.remotePeer = null;
    this.pending = []; // ICE candidates that came before their connection's description
    this.stopped = false;

    signaling.addEventListener("joined", (e) => {
      this.iceServers = e.detail.ice_servers || [];
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

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, text: STATE_TEXT[state] || state } }));
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

  connectTo(peer) {
    this.closePeerConnection();
    this.remotePeer = peer;
    this.connection = newId();
    this.remoteConnection = null;
    this.pending = [];
    this.connected = false;
    this.setState(this.state === "connected" || this.state === "left" ? "reconnecting" : "connecting");
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
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
        clearTimeout(this.watchdog);
        this.setState("connected");
      } else if (state === "disconnected" || state === "failed") {
        this.setState("reconnecting");
        this.armWatchdog(state === "failed" ? 0 : 2000);
      }
    };
    for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
    this.armWatchdog(6000);
  }

  // Not connected in time (or the network broke): the recruiter's page starts a new connection
  // (or an ICE restart once connected before); the candidate's page asks it to.
  armWatchdog(delay) {
    clearTimeout(this.watchdog);
    const pc = this.pc;
    this.watchdog = setTimeout(() => {
      if (pc !== this.pc || this.stopped || pc.connectionState === "connected") return;
      if (!this.offerer) {
        this.send({ type: "restart" });
        this.armWatchdog(6000);
      } else if (this.connected) {
        pc.restartIce();
        this.armWatchdog(6000);
      } else {
        this.connectTo(this.remotePeer);
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
      this.connectTo(this.remotePeer); // their connection is new: so is ours
    } else if (pc.connectionState !== "connected") {
      pc.restartIce();
    }
  }

  async onOffer(message) {
    if (this.stopped || this.offerer) return;
    if (message.from !== this.remotePeer || (this.remoteConnection && message.connection !== this.remoteConnection)) {
      // Their page or connection is new: so is ours.
      this.connectTo(message.from);
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
    muteButton.textContent = track.enabled ? "Mute microphone" : "Unmute microphone";
  });
  cameraButton.addEventListener("click", () => {
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !track.enabled;
    cameraButton.setAttribute("aria-pressed", String(!track.enabled));
    cameraButton.textContent = track.enabled ? "Camera off" : "Camera on";
  });
  if (!stream.getVideoTracks().length) cameraButton.disabled = true;
}

// The call part of a page (the _call.html block): the call with the other person, the
// controls, the "Recording" indicator and the microphone's link to the server's recorder.
export function startCallOnPage({ signaling, stream, role, leftText, lastPresence }) {
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
  const recording = new RecordingLink({ signaling, track: stream.getAudioTracks()[0], iceServers: call.iceServers });
  recording.start();
  // The signaling socket may already be in the room: start from its last presence.
  if (lastPresence) call.follow(lastPresence);
  signaling.attachCall();
  return { call, recording, callState };
}
