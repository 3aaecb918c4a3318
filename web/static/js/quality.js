import { t } from "./i18n.js";
// Connection quality from getStats: the round-trip time, packet loss and bitrate of a peer
// connection, sampled every two seconds, and what they mean in words.
//
// Levels (the same thresholds as docs/connectivity.md):
//   good  RTT under 300 ms and under 2 % of packets lost
//   fair  RTT under 600 ms and under 8 % lost: speech is fine, video may blur or stutter
//   poor  anything worse: words get lost, the call may freeze or drop

export const SAMPLE_MS = 2000;
const LEVEL_TEXT = { good: t("Good"), fair: t("Fair"), poor: t("Poor") };

export function level({ rttMs, loss }) {
  if (rttMs == null && loss == null) return "unknown";
  if ((loss ?? 0) >= 0.08 || (rttMs ?? 0) >= 600) return "poor";
  if ((loss ?? 0) >= 0.02 || (rttMs ?? 0) >= 300) return "fair";
  return "good";
}

function transportOf(candidate) {
  if (!candidate) return null;
  if (candidate.candidateType !== "relay") return candidate.protocol || null;
  return candidate.relayProtocol || candidate.protocol || null;
}

// The selected candidate pair of a connection: which kinds of candidates the call runs over
// ("host", "srflx", "prflx" or "relay" on each side) and its round-trip time.
export function selectedPair(stats) {
  let pair = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      pair = stats.get(report.selectedCandidatePairId) || pair;
    }
  });
  if (!pair) {
    stats.forEach((report) => {
      if (report.type === "candidate-pair" && report.state === "succeeded" && (report.selected || report.nominated)) {
        pair = pair || report;
      }
    });
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local ? local.candidateType : null,
    remote: remote ? remote.candidateType : null,
    localTransport: transportOf(local),
    remoteTransport: remote ? remote.protocol || null : null,
    rttMs: pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
    relayed: Boolean((local && local.candidateType === "relay") || (remote && remote.candidateType === "relay")),
  };
}

// One sample of a connection, compared with the previous one (null: the first).
export async function sample(pc, previous) {
  const stats = await pc.getStats();
  const totals = { at: performance.now(), received: 0, lost: 0, bytes: 0, audio: 0, video: 0, frames: 0 };
  let sentLoss = null;
  let sentRttMs = null;
  stats.forEach((report) => {
    if (report.type === "inbound-rtp") {
      totals.received += report.packetsReceived || 0;
      totals.lost += Math.max(0, report.packetsLost || 0);
      totals.bytes += report.bytesReceived || 0;
      if (report.kind === "audio") totals.audio += report.bytesReceived || 0;
      if (report.kind === "video") {
        totals.video += report.bytesReceived || 0;
        totals.frames += report.framesDecoded || 0;
      }
    } else if (report.type === "remote-inbound-rtp") {
      // What the other end reports about the packets this page sends.
      if (report.fractionLost != null) sentLoss = Math.max(sentLoss ?? 0, report.fractionLost);
      if (report.roundTripTime != null) sentRttMs = report.roundTripTime * 1000;
    }
  });
  const pair = selectedPair(stats);
  const result = {
    totals,
    pair,
    rttMs: pair && pair.rttMs != null ? pair.rttMs : sentRttMs,
    loss: null,
    kbps: null,
    audioKbps: null,
    videoKbps: null,
    fps: null,
    sentLoss,
  };
  if (previous && previous.totals && totals.at > previous.totals.at) {
    const seconds = (totals.at - previous.totals.at) / 1000;
    const received = totals.received - previous.totals.received;
    const lost = Math.max(0, totals.lost - previous.totals.lost);
    result.loss = received + lost > 0 ? lost / (received + lost) : previous.loss;
    result.kbps = Math.max(0, (totals.bytes - previous.totals.bytes) * 8) / seconds / 1000;
    result.audioKbps = Math.max(0, (totals.audio - previous.totals.audio) * 8) / seconds / 1000;
    result.videoKbps = Math.max(0, (totals.video - previous.totals.video) * 8) / seconds / 1000;
    result.fps = Math.max(0, totals.frames - previous.totals.frames) / seconds;
  }
  return result;
}

// Samples `getPc()` every SAMPLE_MS and dispatches "sample" events; a new connection starts
// its counters afresh.
export class QualityMonitor extends EventTarget {
  constructor(getPc) {
    super();
    this.getPc = getPc;
    this.previous = null;
    this.pc = null;
    this.last = null;
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
  }

  async tick() {
    const pc = this.getPc();
    if (!pc || pc.connectionState === "closed") {
      this.previous = null;
      this.pc = null;
      return;
    }
    if (pc !== this.pc) {
      this.pc = pc;
      this.previous = null;
    }
    try {
      const now = await sample(pc, this.previous);
      if (pc !== this.pc) return;
      this.previous = now;
      this.last = now;
      this.dispatchEvent(new CustomEvent("sample", { detail: now }));
    } catch {
      /* a connection closed mid-read: the next tick starts over */
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

function formatRate(kbps) {
  if (kbps == null) return null;
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
}

// "Connection: Good · 42 ms · 0.0 % lost · 1.2 Mbit/s", with data-level for the colour.
export function showQuality(element, detail) {
  const rating = level(detail);
  const parts = [t("Connection: {level}", { level: LEVEL_TEXT[rating] || t("measuring…") })];
  if (detail.rttMs != null) parts.push(t("{ms} ms", { ms: Math.round(detail.rttMs) }));
  if (detail.loss != null) parts.push(t("{percent} % lost", { percent: (detail.loss * 100).toFixed(1) }));
  const rate = formatRate(detail.kbps);
  if (rate) parts.push(rate);
  if (detail.pair && detail.pair.relayed) parts.push(t("via relay"));
  element.textContent = parts.join(" · ");
  element.dataset.level = rating;
  element.title =
    t("Round-trip time, share of packets lost and incoming bitrate of the call, measured every two seconds.");
}

// A page's path to the server (its recording connection), as another page is told it;
// `connected`: whether that connection is up now (null until it first came up).
export function serverPath(detail, connected = null) {
  if (!detail) return { server_rtt_ms: null, server_loss: null, server_connected: connected };
  return { server_rtt_ms: detail.rttMs, server_loss: detail.sentLoss, server_connected: connected };
}

// Whether a page's own network is what is failing: its path to the server is down, lossy
// or slow (the other page's path to the same server is the comparison).
export function pathIsBad(report) {
  if (!report) return false;
  if (report.server_connected === false) return true;
  return (report.server_loss ?? 0) >= 0.05 || (report.server_rtt_ms ?? 0) >= 500;
}

function clamp(value, low, high) {
  return value == null || Number.isNaN(value) ? null : Math.min(high, Math.max(low, value));
}

// The `quality` message a page relays to the other page of the call.
export function qualityMessage(call, server, state) {
  return {
    type: "quality",
    rtt_ms: clamp(call && call.rttMs, 0, 60000),
    loss: clamp(call && call.loss, 0, 1),
    kbps: clamp(call && call.kbps, 0, 1000000),
    server_rtt_ms: clamp(server.server_rtt_ms, 0, 60000),
    server_loss: clamp(server.server_loss, 0, 1),
    server_connected: server.server_connected ?? null,
    state: state || null,
  };
}
