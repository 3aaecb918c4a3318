import { t } from "./i18n.js";
// The connectivity check before Join: can this browser reach the service's TURN relay (a relay
// candidate is gathered) and the server's peer (a probe connection comes up, as the recording
// connection will have to)? The result in plain words for the candidate, and a short summary
// the recruiter's waiting page shows.

const GATHER_MS = 8000;
const CONNECT_MS = 10000;

function urlsOf(server) {
  return Array.isArray(server.urls) ? server.urls : [server.urls];
}

function transportOfUrl(url) {
  const text = String(url || "");
  if (text.startsWith("turns:")) return "tls";
  return /[?&]transport=tcp/.test(text) ? "tcp" : "udp";
}

const PREFERENCE = ["udp", "tcp", "tls"];

function once(target, type, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, handler);
      resolve(null);
    }, timeoutMs);
    const handler = (event) => {
      clearTimeout(timer);
      target.removeEventListener(type, handler);
      resolve(event.detail);
    };
    target.addEventListener(type, handler);
  });
}

function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// A relay candidate from each TURN URL that answers, within GATHER_MS.
async function checkRelay(iceServers) {
  const turn = iceServers.filter((server) => urlsOf(server).some((url) => /^turns?:/.test(String(url))));
  if (!turn.length) return { relay: "none", relay_via: null };
  const pc = new RTCPeerConnection({ iceServers: turn, iceTransportPolicy: "relay" });
  const via = new Set();
  let relays = 0;
  const note = (protocol, url) => {
    // How the relay was reached: the candidate says so (relayProtocol); older browsers only
    // name the server's URL.
    const transport = protocol || (url ? transportOfUrl(url) : null);
    if (transport) via.add(transport);
  };
  pc.addEventListener("icecandidate", (event) => {
    const candidate = event.candidate;
    if (!candidate || !/ typ relay /.test(candidate.candidate)) return;
    relays += 1;
    note(candidate.relayProtocol, event.url);
  });
  try {
    pc.createDataChannel("check");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, GATHER_MS);
    (await pc.getStats()).forEach((report) => {
      if (report.type === "local-candidate" && report.candidateType === "relay") note(report.relayProtocol, report.url);
    });
  } catch (error) {
    console.warn("relay check failed", error);
  } finally {
    pc.close();
  }
  const best = PREFERENCE.find((transport) => via.has(transport)) || null;
  return { relay: relays || via.size ? "ok" : "failed", relay_via: best };
}

// The server's probe-answer, or null when it refused the probe or said nothing in time.
function probeReply(signaling) {
  return new Promise((resolve) => {
    const done = (value) => {
      clearTimeout(timer);
      signaling.removeEventListener("probe-answer", onAnswer);
      signaling.removeEventListener("error", onError);
      resolve(value);
    };
    const onAnswer = (event) => done(event.detail);
    const onError = (event) => {
      if (["bad_sdp", "unavailable", "not_joined"].includes(event.detail.code)) done(null);
    };
    const timer = setTimeout(() => done(null), CONNECT_MS);
    signaling.addEventListener("probe-answer", onAnswer);
    signaling.addEventListener("error", onError);
  });
}

// A data-channel connection to the server's peer, with the call's ICE servers and policy.
async function checkServer(signaling, iceServers, policy) {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy });
  try {
    pc.createDataChannel("probe");
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 4000);
    const answered = probeReply(signaling);
    if (!signaling.send({ type: "probe-offer", sdp: pc.localDescription.sdp })) return { server: "failed", rtt_ms: null };
    const reply = await answered;
    if (!reply || !reply.sdp) return { server: "failed", rtt_ms: null };
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    const connected = await new Promise((resolve) => {
      if (pc.connectionState === "connected") return resolve(true);
      const timer = setTimeout(() => resolve(false), CONNECT_MS);
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "connected") {
          clearTimeout(timer);
          resolve(true);
        } else if (pc.connectionState === "failed") {
          clearTimeout(timer);
          resolve(false);
        }
      });
    });
    if (!connected) return { server: "failed", rtt_ms: null };
    let rtt = null;
    const stats = await pc.getStats();
    stats.forEach((report) => {
      if (report.type === "candidate-pair" && report.state === "succeeded" && report.currentRoundTripTime != null) {
        rtt = report.currentRoundTripTime * 1000;
      }
    });
    return { server: "ok", rtt_ms: rtt };
  } catch (error) {
    console.warn("server check failed", error);
    return { server: "failed", rtt_ms: null };
  } finally {
    pc.close();
  }
}

// Runs both checks; `signaling` must have joined (its last `joined` message has the servers).
export async function checkNetwork(signaling) {
  const info = signaling.joinedInfo || (await once(signaling, "joined", 10000));
  if (!info) return { relay: "failed", relay_via: null, server: "failed", rtt_ms: null };
  const iceServers = info.ice_servers || [];
  const policy = info.ice_transport_policy || "all";
  const [relay, server] = await Promise.all([checkRelay(iceServers), checkServer(signaling, iceServers, policy)]);
  return { ...relay, ...server };
}

// What the candidate reads: whether the call will work, and what to do if not.
export function adviceFor(result) {
  const { relay, relay_via: via, server } = result;
  if (server === "ok" && relay !== "failed") {
    if (via && via !== "udp") {
      return {
        ok: true,
        text: t("Your network is ready for the call. It blocks some traffic, so the call will go through our relay server; that works, but if you can, use a network without a VPN or firewall for the smoothest call."),
      };
    }
    return { ok: true, text: t("Your network is ready for the call.") };
  }
  if (server === "ok") {
    return {
      ok: true,
      text: t("Your network reaches the interview server. Our relay server for strict networks could not be reached: if the call does not connect, try another network (for example your phone's hotspot) or turn off your VPN."),
    };
  }
  if (relay === "ok") {
    return {
      ok: false,
      text: t("Your network lets through only part of what the call needs. If you can, turn off your VPN or switch to another network (for example your phone's hotspot); otherwise join anyway, and the call will try our relay server."),
    };
  }
  return {
    ok: false,
    text: t("Your network blocks the call. Try another network (for example your phone's hotspot), turn off your VPN, or ask your IT team to allow UDP traffic and TCP port 443 to this site. Then click Check again."),
  };
}

// What the recruiter's waiting page shows about the candidate's check.
export function summaryFor(result, name) {
  const { relay, relay_via: via, server } = result;
  if (server === "ok" && relay !== "failed") {
    const route = via && via !== "udp" ? t(" (through the relay over {protocol}: their network blocks UDP)", { protocol: via.toUpperCase() }) : "";
    return { ok: true, text: t("Network check: {name}'s network is ready for the call{route}.", { name, route }) };
  }
  if (server === "ok") {
    return { ok: true, text: t("Network check: {name}'s network reaches the server, but not the relay; the call should still connect.", { name }) };
  }
  return {
    ok: false,
    text: t("Network check: {name}'s network blocks the call. They were asked to try another network or turn off their VPN; the call may not connect.", { name }),
  };
}
