// The signaling WebSocket: joins the interview's room, reconnects with backoff, and
// hands every server message to the page's handlers by type.

const CALL_TYPES = new Set(["offer", "answer", "ice", "restart"]);

export class Signaling extends EventTarget {
  constructor(join) {
    super();
    this.join = join;
    this.ws = null;
    this.attempt = 0;
    this.closed = false;
    this.peer = null;
    // The last `joined` message (its ice_servers, ice_transport_policy, presence): a call or
    // recording link made after it arrived reads it here instead of waiting for the next one.
    this.joinedInfo = null;
    // Call messages that arrive before the page has a call to hand them to are kept, so an
    // offer sent the moment this page joined is not lost while the camera is still opening.
    this.callAttached = false;
    this.callQueue = [];
  }

  attachCall() {
    this.callAttached = true;
    const queued = this.callQueue;
    this.callQueue = [];
    for (const message of queued) this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "join", ...this.join }));
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "joined") {
        this.attempt = 0;
        this.peer = message.peer;
        this.joinedInfo = message;
      }
      if (CALL_TYPES.has(message.type) && !this.callAttached) {
        if (this.callQueue.length < 500) this.callQueue.push(message);
        return;
      }
      this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
    });
    ws.addEventListener("close", (event) => {
      this.dispatchEvent(new CustomEvent("disconnected", { detail: { code: event.code } }));
      // 4401: signed out everywhere; joining again would be refused.
      if (this.closed || event.code === 4401) return;
      // 1013: server busy, 4429: too many sockets from this address; back off longer.
      // Otherwise 0.5 s, 1 s, 2 s ... up to 8 s, each at a random point of its upper half,
      // so that the thousands of pages a restarted node had do not all come back at once.
      const base = event.code === 1013 || event.code === 4429 ? 5000 : 500;
      const delay = Math.min(8000, base * 2 ** this.attempt++);
      setTimeout(() => this.connect(), delay / 2 + (Math.random() * delay) / 2);
    });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
