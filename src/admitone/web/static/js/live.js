// The live connection of an event page: a WebSocket that delivers a snapshot, then changes.
// It remembers the last sequence number and, when the connection drops, reconnects with backoff and
// resumes from there (`last_seq`), so no change is missed.

const CLOSE_TOO_SLOW = 4008;
const CLOSE_NOT_FOUND = 4404;

export class LiveConnection {
  /**
   * @param {number} eventId
   * @param {{onMessage: (msg: object) => void, onStatus: (status: string, detail?: string) => void}} handlers
   *   status: "connecting" | "live" | "reconnecting" | "offline"
   */
  constructor(eventId, { onMessage, onStatus }) {
    this.eventId = eventId;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.lastSeq = null;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.everLive = false;
    this.status = null;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => {
      if (this.socket) this.socket.close();
    });
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const resume = this.lastSeq === null ? "" : `?last_seq=${this.lastSeq}`;
    return `${scheme}//${location.host}/api/v1/events/${this.eventId}/live${resume}`;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }

  reconnectNow() {
    if (this.stopped || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    this.timer = null;
    this.setStatus(this.everLive ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof message.seq === "number") this.lastSeq = message.seq;
      if (message.type === "snapshot" || message.type === "changes") {
        this.attempt = 0;
        this.markLive();
        this.onMessage(message);
      }
    });
    socket.addEventListener("open", () => {
      // A first connection is live once its snapshot arrives. A resumed one may get nothing at all when
      // nothing changed meanwhile, so it is live as soon as it is open.
      if (this.lastSeq !== null) this.markLive();
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (event.code === CLOSE_NOT_FOUND) {
        this.setStatus("offline", "This event is not on sale.");
        return;
      }
      this.scheduleReconnect(event.code === CLOSE_TOO_SLOW);
    });
    // An error is always followed by a close event, which reconnects.
  }

  markLive() {
    if (this.status === "live") return;
    this.everLive = true;
    this.setStatus("live");
  }

  setStatus(status, detail) {
    this.status = status;
    this.onStatus(status, detail);
  }

  scheduleReconnect(soon = false) {
    this.setStatus("reconnecting");
    const base = soon ? 250 : Math.min(10000, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
