// The browser side of the Confab signaling protocol (docs/signaling-protocol.md): one WebSocket
// to /ws, `join` first, then `signal` relays; reconnects with backoff and resumes the session,
// so a signaling blip never ends the call (media does not go through the server).
//
// Contract: `connect()` resolves with the first `welcome` or rejects with a JoinError. After
// that, everything arrives through the handlers given to the constructor:
//   onJoined(participant), onLeft(id, reason), onSignal(from, signal), onServerError(code, msg),
//   onDisconnected(reason), onReconnected(welcome), onClosed(reason).
// Signals sent while disconnected are queued and flushed after the resume; the server holds the
// ones addressed to us for its grace period.

const PROTOCOL_VERSION = 1;
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 5000;
const GIVE_UP_AFTER_MS = 5 * 60 * 1000;
const CONNECT_TIMEOUT_MS = 10000;
const MAX_QUEUED = 500;

/** Why joining failed: `code` is the server's stable error code or a local one. */
export class JoinError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Codes that end a join attempt for good (anything else during a rejoin is retried). */
const FATAL_JOIN_CODES = new Set([
  "room_full", "wrong_password", "too_many_rooms", "invalid_field", "invalid_message",
  "unsupported_version",
]);

/** The signaling URL of the server that served this page. */
export function defaultServerUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

export class Signaling {
  constructor({ url, room, name, password, handlers }) {
    this.url = url;
    this.room = room;
    this.name = name;
    this.password = password || undefined;
    this.h = handlers;
    this.ws = null;
    this.welcome = null;
    this.queue = [];
    this.leaving = false;
    this.closed = false;
    this.connected = false;
    this.lostAt = null;
    this.attempt = 0;
    this.timer = null;
  }

  /** Connects and joins; resolves with the welcome. */
  connect() {
    return new Promise((resolve, reject) => {
      this.open({ resume: null, onWelcome: resolve, onFail: reject });
    });
  }

  open({ resume, onWelcome, onFail }) {
    let settled = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      onFail(new JoinError("unreachable", `cannot reach the signaling server: ${e.message}`));
      return;
    }
    this.ws = ws;
    const timeout = setTimeout(() => {
      if (!settled) {
        settled = true;
        ws.close();
        onFail(new JoinError("timeout", "the signaling server did not answer within 10 s"));
      }
    }, CONNECT_TIMEOUT_MS);
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      onFail(err);
    };
    ws.onopen = () => {
      const join = { v: PROTOCOL_VERSION, type: "join", room: this.room, name: this.name };
      if (this.password) join.password = this.password;
      if (resume) join.resume = resume;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!settled) {
        if (msg.type === "welcome") {
          settled = true;
          clearTimeout(timeout);
          this.welcome = msg;
          this.connected = true;
          this.attempt = 0;
          this.lostAt = null;
          this.flush();
          onWelcome(msg);
        } else if (msg.type === "error") {
          fail(new JoinError(msg.code, msg.message || msg.code));
          ws.onclose = null;
          ws.close();
        }
        return;
      }
      this.dispatch(msg);
    };
    ws.onclose = (ev) => {
      if (!settled) {
        fail(new JoinError("unreachable",
          ev.code === 1013 ? "the server is full; try again later"
            : "cannot reach the signaling server"));
        return;
      }
      if (ws !== this.ws) return;
      this.connected = false;
      if (this.leaving || this.closed) return;
      this.lostAt ??= Date.now();
      this.h.onDisconnected?.(ev.reason || `connection closed (${ev.code})`);
      this.scheduleReconnect();
    };
  }

  dispatch(msg) {
    switch (msg.type) {
      case "participant_joined":
        this.h.onJoined?.(msg.participant);
        break;
      case "participant_left":
        this.h.onLeft?.(msg.id, msg.reason);
        break;
      case "signal":
        this.h.onSignal?.(msg.from, msg.signal);
        break;
      case "error":
        this.h.onServerError?.(msg.code, msg.message);
        break;
      case "shutdown":
        if (msg.ended === true) {
          // The host ended the call for everyone: nothing to reconnect to.
          this.closed = true;
          this.h.onClosed?.(msg.message || "the host ended the call");
          break;
        }
        // The close (1001) follows; onclose reconnects.
        this.h.onServerError?.("shutdown", msg.message || "the server is shutting down");
        break;
      default:
        break;
    }
  }

  scheduleReconnect() {
    if (Date.now() - this.lostAt > GIVE_UP_AFTER_MS) {
      this.closed = true;
      this.h.onClosed?.("the signaling server has been unreachable for 5 minutes");
      return;
    }
    const base = Math.min(BACKOFF_START_MS * 2 ** this.attempt, BACKOFF_MAX_MS);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), delay);
  }

  reconnect(withResume = true) {
    if (this.leaving || this.closed) return;
    const resume = withResume && this.welcome
      ? { id: this.welcome.id, token: this.welcome.resume_token } : null;
    this.open({
      resume,
      onWelcome: (welcome) => this.h.onReconnected?.(welcome),
      onFail: (err) => {
        if (err.code === "resume_rejected") {
          // The session is gone for good: join afresh (a new id; the caller starts over).
          this.reconnect(false);
        } else if (FATAL_JOIN_CODES.has(err.code)) {
          this.closed = true;
          this.h.onClosed?.(err.message);
        } else {
          this.scheduleReconnect();
        }
      },
    });
  }

  send(obj) {
    const text = JSON.stringify({ v: PROTOCOL_VERSION, ...obj });
    if (this.connected && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(text);
    } else if (!this.closed && !this.leaving) {
      if (this.queue.length >= MAX_QUEUED) this.queue.shift();
      this.queue.push(text);
    }
  }

  flush() {
    const pending = this.queue;
    this.queue = [];
    for (const text of pending) this.ws.send(text);
  }

  /** Relays `signal` to participant `to`. */
  signal(to, signal) {
    this.send({ type: "signal", to, signal });
  }

  /** Says goodbye and closes; no reconnect after this. */
  leave() {
    this.leaving = true;
    clearTimeout(this.timer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type: "leave" }));
      this.ws.close(1000);
    } else if (this.ws) {
      this.ws.close();
    }
  }
}
