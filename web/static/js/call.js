// The browser-to-browser call: one RTCPeerConnection with audio and video, negotiated over the
// signaling WebSocket with the "perfect negotiation" pattern (the candidate is polite, the
// recruiter is not), rebuilt whenever the other side's page is replaced, and ICE-restarted
// after a network blip.

const STATE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
};

export class Call extends EventTarget {
  constructor({ signaling, polite, localStream, remoteVideo, otherRole }) {
    super();
    this.signaling = signaling;
    this.polite = polite;
    this.localStream = localStream;
    this.remoteVideo = remoteVideo;
    this.otherRole = otherRole; // "candidate" or "recruiter": whose peer id to follow
    this.iceServers = [];
    this.pc = null;
    this.remotePeer = null;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.restartTimer = null;
    this.stopped = false;

    signaling.addEventListener("joined", (e) => {
      this.iceServers = e.detail.ice_servers || [];
      this.follow(e.detail.presence);
    });
    signaling.addEventListener("presence", (e) => this.follow(e.detail));
    signaling.addEventListener("offer", (e) => this.onDescription(e.detail, "offer"));
    signaling.addEventListener("answer", (e) => this.onDescription(e.detail, "answer"));
    signaling.addEventListener("ice", (e) => this.onCandidate(e.detail));
    signaling.addEventListener("restart", (e) => {
      if (e.detail.from === this.remotePeer && this.pc) this.pc.restartIce();
    });
    signaling.addEventListener("disconnected", () => {
      if (this.pc) this.setState("reconnecting");
    });
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, text: STATE_TEXT[state] || state } }));
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
    this.setState(this.state === "connected" || this.state === "left" ? "reconnecting" : "connecting");
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this.makingOffer = false;
    this.ignoreOffer = false;
    const remote = new MediaStream();
    this.remoteVideo.srcObject = remote;
    pc.ontrack = ({ track }) => {
      remote.addTrack(track);
      this.remoteVideo.play().catch(() => {});
    };
    pc.onicecandidate = ({ candidate }) => {
      this.signaling.send({ type: "ice", to: peer, candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.signaling.send({ type: "offer", to: peer, sdp: pc.localDescription.sdp });
      } catch (error) {
        console.warn("negotiation failed", error);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      if (state === "connected") {
        clearTimeout(this.restartTimer);
        this.setState("connected");
      } else if (state === "disconnected" || state === "failed") {
        this.setState("reconnecting");
        // A blip: restart ICE (the impolite side drives it; the polite side asks).
        clearTimeout(this.restartTimer);
        this.restartTimer = setTimeout(() => this.restartIce(), state === "failed" ? 0 : 2000);
      }
    };
    for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
  }

  restartIce() {
    if (!this.pc || this.pc.connectionState === "connected") return;
    if (this.polite) this.signaling.send({ type: "restart", to: this.remotePeer });
    else this.pc.restartIce();
  }

  async onDescription(message, type) {
    if (this.stopped) return;
    if (message.from !== this.remotePeer) {
      // An offer from a page we have not seen in presence yet: it is the other side's new page.
      if (type !== "offer") return;
      this.connectTo(message.from);
    }
    const pc = this.pc;
    const collision = type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    try {
      await pc.setRemoteDescription({ type, sdp: message.sdp });
      if (type === "offer") {
        await pc.setLocalDescription();
        this.signaling.send({ type: "answer", to: message.from, sdp: pc.localDescription.sdp });
      }
    } catch (error) {
      console.warn("could not apply the remote description", error);
    }
  }

  async onCandidate(message) {
    if (!this.pc || message.from !== this.remotePeer) return;
    try {
      await this.pc.addIceCandidate(message.candidate || null);
    } catch (error) {
      if (!this.ignoreOffer) console.warn("could not add an ICE candidate", error);
    }
  }

  closePeerConnection() {
    clearTimeout(this.restartTimer);
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
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
