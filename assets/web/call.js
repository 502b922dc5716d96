// The call: one room, one Peer per remote participant (mesh), our local media. Owns the rules
// the native session (src/engine/session.rs) keeps too:
// - the newcomer offers to everyone listed in its welcome; the others wait for its offer;
// - a signaling reconnect leaves the peer connections alone; after a server restart (welcome
//   with resumed=false) we offer to anyone we have no connection with;
// - a `hangup` signal or `participant_left` closes that participant's connection.
//
// No DOM here: app.js renders what the `ui` callbacks report.
//   ui.participantJoined(id, name), ui.participantLeft(id), ui.stream(id, MediaStream),
//   ui.linkState(id, state), ui.code(id, code), ui.chat({from, name, text, at, mine}),
//   ui.remoteMedia(id, {mic, camera, screen}), ui.signaling(state, detail), ui.ended(reason),
//   ui.chatFailed(names, why), ui.localScreen(stream or null, why), ui.presenter(id, stream)
//   (id and stream null: nobody's screen is shown), ui.notice(text)
// - screen sharing (docs/signaling-protocol.md, "Peer to peer"): our share is a second video
//   track to every peer, also to peers that join while we share; one share at a time per room:
//   when a participant newly announces a screen while we share, ours stops. The screen shown is
//   the most recent remote one, and none while we share (we see our own preview).
// - chat is delivered to each participant exactly once, in order, or reported: a message waits
//   for a participant whose channel is not open yet (or who has no connection yet) and is given
//   up on, with ui.chatFailed, when they leave, we hang up, or after CHAT_DELIVERY_TIMEOUT_MS;
//   with nobody else in the room it is not sent at all (sendChat returns null).

import { Peer } from "./peer.js";
import { Signaling } from "./signaling.js";

/** How long a chat message waits for a participant's channel (the native engine's value). */
const CHAT_DELIVERY_TIMEOUT_MS = 20000;

export class Call {
  constructor({ url, room, name, password, localStream, ui }) {
    this.room = room;
    this.name = name;
    this.localStream = localStream;
    this.ui = ui;
    this.peers = new Map();
    this.names = new Map();
    this.myId = null;
    this.iceServers = [];
    this.mic = !!localStream?.getAudioTracks().length;
    this.camera = !!localStream?.getVideoTracks().length;
    this.joinedAt = null;
    /** Our screen share: {stream, track}, or null. */
    this.screen = null;
    /** Remote screens we receive: id -> {stream, since} (since: a counter, latest wins). */
    this.remoteScreens = new Map();
    /** The `screen` each participant last announced: id -> stream id or null. */
    this.announced = new Map();
    this.shareCounter = 0;
    /** Whose screen the page shows: {id, stream}, or null. */
    this.presenting = null;
    // Re-send our mic/camera state now and then: it is idempotent, and it heals a message lost
    // as a channel opened (docs/signaling-protocol.md, "Peer to peer").
    this.mediaRefresh = setInterval(() => this.broadcastMedia(), 5000);
    /** Chat for participants we have no connection with yet: id -> [{text, at}]. */
    this.early = new Map();
    this.chatExpiry = setInterval(() => this.expireChat(), 1000);
    this.signaling = new Signaling({
      url, room, name, password,
      handlers: {
        onJoined: (p) => this.onJoined(p),
        onLeft: (id) => this.removePeer(id, true),
        onSignal: (from, signal) => this.onSignal(from, signal),
        onServerError: (code, message) => this.ui.serverError?.(code, message),
        onDisconnected: (reason) => this.ui.signaling("reconnecting", reason),
        onReconnected: (welcome) => this.onReconnected(welcome),
        onClosed: (reason) => this.end(reason),
      },
    });
  }

  /** Joins the room; rejects with a JoinError (room full, wrong password, unreachable...). */
  async join() {
    const welcome = await this.signaling.connect();
    this.joinedAt = performance.now();
    this.enter(welcome);
    this.ui.signaling("connected");
    return welcome;
  }

  enter(welcome) {
    this.myId = welcome.id;
    this.iceServers = welcome.ice_servers || [];
    for (const p of welcome.participants || []) {
      this.names.set(p.id, p.name);
      if (!this.peers.has(p.id)) {
        this.ui.participantJoined(p.id, p.name);
        // We are the newcomer: we offer (asking to receive even what we do not send).
        const peer = this.createPeer(p.id);
        peer.addReceiveOnly();
        peer.offer();
      }
    }
  }

  onJoined(p) {
    this.names.set(p.id, p.name);
    if (!this.peers.has(p.id)) this.ui.participantJoined(p.id, p.name);
    // The newcomer offers; we wait for its offer.
  }

  onReconnected(welcome) {
    if (welcome.id !== this.myId) {
      // Our old session was refused: we are a new participant now and start over.
      for (const id of [...this.peers.keys()]) this.removePeer(id, true);
    }
    this.ui.signaling("connected");
    if (!welcome.resumed) this.enter(welcome);
  }

  createPeer(id) {
    const name = this.names.get(id) || id;
    const peer = new Peer({
      id, name, myId: this.myId, iceServers: this.iceServers, localStream: this.localStream,
      sendSignal: (signal) => this.signaling.signal(id, signal),
      handlers: {
        onTrack: (stream) => this.ui.stream(id, stream),
        onScreen: (stream) => this.onRemoteScreen(id, stream),
        onState: (state) => this.ui.linkState(id, state),
        onCode: (code) => this.ui.code(id, code),
        onChatOpen: () => peer.sendMediaState(this.mic, this.camera, this.screenId()),
        onChat: (text) => this.ui.chat({
          from: id, name: this.names.get(id) || name, text, at: new Date(), mine: false,
        }),
        onMedia: (m) => this.onRemoteMedia(id, m),
      },
      // A participant who joins while we share gets the screen in its connection too.
      screen: this.screen,
    });
    this.peers.set(id, peer);
    peer.outbox.push(...(this.early.get(id) || []));
    this.early.delete(id);
    this.ui.linkState(id, "new");
    return peer;
  }

  async onSignal(from, signal) {
    if (signal.kind === "hangup") {
      this.removePeer(from, true);
      return;
    }
    let peer = this.peers.get(from);
    if (peer && signal.kind === "offer" && peer.offerIsFromNewConnection(signal.sdp)) {
      // The other side re-created its connection: so do we, keeping the chat that waits.
      const waiting = peer.takeUndelivered();
      peer.close();
      this.peers.delete(from);
      peer = this.createPeer(from);
      peer.outbox.push(...waiting.map((text) => ({ text, at: Date.now() })));
    }
    if (!peer) {
      if (signal.kind !== "offer" && signal.kind !== "ice_restart") return;
      if (!this.names.has(from)) this.ui.participantJoined(from, from);
      peer = this.createPeer(from);
    }
    await peer.onSignal(signal);
  }

  removePeer(id, announce) {
    const peer = this.peers.get(id);
    const name = this.names.get(id) || peer?.name || id;
    const lost = [...(peer?.takeUndelivered() || []), ...(this.early.get(id) || []).map((m) => m.text)];
    this.early.delete(id);
    if (lost.length) this.ui.chatFailed?.([name], "left before it was delivered");
    if (peer) {
      peer.close();
      this.peers.delete(id);
    }
    this.names.delete(id);
    this.announced.delete(id);
    this.remoteScreens.delete(id);
    this.updatePresenter();
    if (announce) this.ui.participantLeft(id);
  }

  /** Sends a chat message to everyone in the room; returns the names it waits for (their
   *  channel is not open yet), or null when nobody else is in the room (nothing is sent). */
  sendChat(text) {
    const ids = new Set([...this.names.keys(), ...this.peers.keys()]);
    ids.delete(this.myId);
    if (!ids.size) return null;
    const waiting = [];
    for (const id of ids) {
      const peer = this.peers.get(id);
      if (peer) {
        if (!peer.sendChat(text)) waiting.push(peer.name);
      } else {
        if (!this.early.has(id)) this.early.set(id, []);
        this.early.get(id).push({ text, at: Date.now() });
        waiting.push(this.names.get(id) || id);
      }
    }
    this.ui.chat({ from: this.myId, name: this.name, text, at: new Date(), mine: true });
    return waiting;
  }

  /** Gives up on chat that waited too long for a participant. */
  expireChat() {
    const failed = [];
    for (const peer of this.peers.values()) {
      if (peer.takeUndelivered(CHAT_DELIVERY_TIMEOUT_MS).length) failed.push(peer.name);
    }
    for (const [id, queued] of this.early) {
      const fresh = queued.filter((m) => Date.now() - m.at < CHAT_DELIVERY_TIMEOUT_MS);
      if (fresh.length < queued.length) failed.push(this.names.get(id) || id);
      this.early.set(id, fresh);
    }
    if (failed.length) this.ui.chatFailed?.(failed, "no connection within 20 s");
  }

  setMic(on) {
    this.mic = on;
    this.localStream?.getAudioTracks().forEach((t) => { t.enabled = on; });
    this.broadcastMedia();
  }

  setCamera(on) {
    this.camera = on;
    this.localStream?.getVideoTracks().forEach((t) => { t.enabled = on; });
    this.broadcastMedia();
  }

  broadcastMedia() {
    for (const peer of this.peers.values()) peer.sendMediaState(this.mic, this.camera, this.screenId());
  }

  /** The msid stream id of our screen share (what `media` announces), or null. */
  screenId() {
    return this.screen?.stream.id ?? null;
  }

  /** Asks the browser for a screen, window or tab and shares it with everyone. Rejects as
   *  getDisplayMedia does (NotAllowedError: the user cancelled the picker or it is blocked);
   *  nothing changes then. */
  async startScreen() {
    if (this.screen) return this.screen.stream;
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } }, audio: false,
    });
    const track = stream.getVideoTracks()[0];
    if (!track || this.ended || this.screen) {
      // Nothing to share, hung up while the picker was open, or a second picker won.
      stream.getTracks().forEach((t) => t.stop());
      if (!track) throw new Error("the browser gave no picture to share");
      return this.screen?.stream ?? null;
    }
    if ("contentHint" in track) track.contentHint = "detail";
    // The browser's own "Stop sharing" bar (or the shared window closing) ends the track.
    track.addEventListener("ended", () => {
      if (this.screen?.track === track) this.stopScreen("ended");
    });
    this.screen = { stream, track };
    for (const peer of this.peers.values()) peer.addScreen(track, stream);
    this.broadcastMedia();
    this.ui.localScreen?.(stream, "started");
    this.updatePresenter();
    return stream;
  }

  /** Stops our screen share (`why`: "user", "ended" by the browser, "replaced" by someone
   *  else's, "left"). */
  stopScreen(why = "user") {
    const share = this.screen;
    if (!share) return;
    this.screen = null;
    for (const peer of this.peers.values()) peer.removeScreen();
    share.track.stop();
    this.broadcastMedia();
    this.ui.localScreen?.(null, why);
    this.updatePresenter();
  }

  /** A participant's media state: a newly announced screen replaces whatever was shared. */
  onRemoteMedia(id, media) {
    const before = this.announced.get(id) ?? null;
    this.announced.set(id, media.screen);
    if (media.screen && media.screen !== before) {
      const name = this.names.get(id) || id;
      const shown = this.remoteScreens.get(id);
      if (shown) shown.since = ++this.shareCounter;
      if (this.screen) {
        this.stopScreen("replaced");
        this.ui.notice?.(`${name} is now sharing; your share stopped.`);
      } else {
        this.ui.notice?.(`${name} is sharing their screen`);
      }
      this.updatePresenter();
    }
    this.ui.remoteMedia(id, media);
  }

  /** A participant's screen track arrived (or was classified as such), or went away (null). */
  onRemoteScreen(id, stream) {
    if (stream) {
      this.remoteScreens.set(id, { stream, since: ++this.shareCounter });
    } else {
      this.remoteScreens.delete(id);
    }
    this.updatePresenter();
  }

  /** Picks whose screen to show: the latest remote one, none while we share ourselves. */
  updatePresenter() {
    let best = null;
    if (!this.screen) {
      for (const [id, s] of this.remoteScreens) {
        if (!best || s.since > best.since) best = { id, stream: s.stream, since: s.since };
      }
    }
    const now = this.presenting;
    if (best?.id === now?.id && best?.stream === now?.stream) return;
    this.presenting = best ? { id: best.id, stream: best.stream } : null;
    this.ui.presenter?.(best?.id ?? null, best?.stream ?? null);
  }

  /** Uses `track` instead of the current one of its kind (a device change), for every peer. */
  async replaceTrack(track) {
    const old = this.localStream.getTracks().find((t) => t.kind === track.kind);
    if (old) {
      this.localStream.removeTrack(old);
      old.stop();
    }
    track.enabled = track.kind === "audio" ? this.mic : this.camera;
    this.localStream.addTrack(track);
    await Promise.all([...this.peers.values()].map((p) => p.replaceTrack(track.kind, track)));
  }

  /** Per participant getStats() summaries, keyed by id. */
  async stats() {
    const out = {};
    for (const [id, peer] of this.peers) out[id] = await peer.stats();
    return out;
  }

  /** Hangs up: tells every peer, leaves the room, stops the camera and microphone. */
  leave(reason = "you left the call") {
    for (const [id, peer] of this.peers) {
      this.signaling.signal(id, { kind: "hangup" });
      peer.close();
    }
    this.peers.clear();
    this.signaling.leave();
    this.end(reason);
  }

  end(reason) {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.mediaRefresh);
    clearInterval(this.chatExpiry);
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.screen?.track.stop();
    this.screen = null;
    this.remoteScreens.clear();
    this.updatePresenter();
    this.localStream?.getTracks().forEach((t) => t.stop());
    this.ui.ended(reason);
  }
}
