// The page's microphone to the server's recorder: a second, audio-only RTCPeerConnection,
// negotiated over the signaling WebSocket (the server answers once; no trickle ICE), redone
// after a reload, a reconnect of the socket, or a failed connection.
//
// The server answers a socket's offers in order, so an answer is matched to its offer by
// counting: only the answer to the newest offer is applied (an older one would break it).

const CONNECT_MS = 12000; // an answered offer that has not connected by then is made again

export class RecordingLink extends EventTarget {
  constructor({ signaling, track }) {
    super();
    this.signaling = signaling;
    this.track = track;
    // The page joined before the link was made (the candidate's page, long before the
    // interview starts): its ICE servers and policy are in the last joined message.
    const joined = signaling.joinedInfo;
    this.iceServers = (joined && joined.ice_servers) || [];
    this.iceTransportPolicy = (joined && joined.ice_transport_policy) || "all";
    this.pc = null;
    this.retry = null;
    this.stopped = false;
    this.unanswered = 0; // offers sent on the current socket whose answers have not come
    signaling.addEventListener("media-answer", (e) => this.onAnswer(e.detail.sdp));
    signaling.addEventListener("joined", (e) => {
      this.iceServers = e.detail.ice_servers || this.iceServers;
      this.iceTransportPolicy = e.detail.ice_transport_policy || this.iceTransportPolicy;
      if (e.detail.peer === this.startedFor) return;
      // A new socket is a new peer on the server: the old recording connection is gone.
      this.unanswered = 0;
      this.start();
    });
    signaling.addEventListener("error", (e) => {
      if (["consent_required", "not_allowed", "bad_sdp", "unavailable"].includes(e.detail.code) && this.pc) {
        this.dispatchEvent(new CustomEvent("problem", { detail: e.detail.message }));
      }
    });
  }

  async start() {
    // Not before the page has joined: the joined message has the ICE servers to use, and
    // it starts the link itself.
    if (this.stopped || !this.track || !this.signaling.joinedInfo) return;
    this.startedFor = this.signaling.peer;
    clearTimeout(this.retry);
    if (this.pc) this.pc.close();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    this.pc = pc;
    pc.addTransceiver(this.track, { direction: "sendonly" });
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === "connected") {
        clearTimeout(this.retry);
      } else if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.start(), 2000);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 3000);
    if (pc !== this.pc) return;
    if (this.signaling.send({ type: "media-offer", sdp: pc.localDescription.sdp })) this.unanswered += 1;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== "connected") this.start();
    }, CONNECT_MS);
  }

  async onAnswer(sdp) {
    if (this.unanswered > 0) this.unanswered -= 1;
    if (this.unanswered > 0) return; // the answer to an older offer of this socket
    if (!this.pc || this.pc.signalingState !== "have-local-offer") return;
    try {
      await this.pc.setRemoteDescription({ type: "answer", sdp });
    } catch (error) {
      console.warn("recording answer rejected", error);
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}

function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

// Shows "Recording" while the server records this page's participant.
export function showRecording(signaling, role, indicator) {
  signaling.addEventListener("event", (e) => {
    if (e.detail.name === "recording" && e.detail.data.role === role) {
      indicator.classList.toggle("hidden", !e.detail.data.active);
    }
    if (e.detail.name === "state" && e.detail.data.state === "completed") indicator.classList.add("hidden");
  });
}
