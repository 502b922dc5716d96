// One RTCPeerConnection to one remote participant, following the Confab peer-to-peer
// conventions (docs/signaling-protocol.md, "Peer to peer"), so a browser and the native engine
// (src/engine/peer, src/engine/session.rs) treat each other as equals:
//
// - Media: our camera and microphone tracks (or receive-only transceivers when we have none),
//   H.264 constrained baseline preferred with setCodecPreferences so a native peer never needs
//   to transcode, Opus audio. A screen share is a second video track (addScreen/removeScreen),
//   added and removed with renegotiation; the remote side's screen is told apart from its
//   camera by its msid stream id (see classifyVideo).
// - Data channel "chat", negotiated, id 0, ordered: {"t":"chat","text":...} and
//   {"t":"media","mic":bool,"camera":bool,"screen":"<stream id>"} (sent when it opens and on
//   every change; `screen` only while sharing). Chat typed
//   before the channel is ready (open, and a first message from the other side arrived on it)
//   waits in `outbox` and goes out, in order, when it is; each message is handed to the
//   (reliable) channel exactly once.
// - Perfect negotiation: the side with the smaller participant id is polite. The first offer is
//   made explicitly (the newcomer offers), exactly like the native engine, so both sides agree
//   on who is making it; ICE restarts are explicit too. Once the first negotiation is done,
//   `negotiationneeded` (a screen track added or removed) makes a renegotiation offer.
// - ICE restart when the connection fails (either side) or stays disconnected (impolite side).
// - Verification code from the two DTLS fingerprints once connected.
//
// Events go to `handlers`: onTrack(stream), onScreen(stream or null), onState(connectionState),
// onCode(code), onChat(text), onMedia({mic, camera, screen}), onChatOpen().

import { fingerprintOf, verificationCodeFromSdp } from "./verification.js";

const RESTART_INTERVAL_MS = 5000;
const DISCONNECTED_GRACE_MS = 2000;
/** The msid stream id prefix of the native engine's screen track. */
export const NATIVE_SCREEN_PREFIX = "confab-screen-";
/** The longest `screen` stream id taken from a peer (the native engine's bound too). */
const MAX_STREAM_ID = 128;
/** The screen sender's encoding: sharp text over smooth motion. */
const SCREEN_MAX_BITRATE = 2_500_000;

/** Video codecs in the order we want them negotiated: H.264 42e01f packetization-mode 1 first. */
export function preferredVideoCodecs() {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.("video");
  if (!caps) return null;
  const score = (c) => {
    const mime = c.mimeType.toLowerCase();
    const fmtp = c.sdpFmtpLine || "";
    if (mime === "video/h264") {
      return (fmtp.includes("packetization-mode=1") ? 0 : 2)
        + (fmtp.includes("profile-level-id=42e01f") ? 0 : 1);
    }
    if (["video/rtx", "video/red", "video/ulpfec", "video/flexfec-03"].includes(mime)) return 5;
    return 4;
  };
  return caps.codecs
    .map((c, i) => ({ c, i, s: score(c) }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map((x) => x.c);
}

/**
 * The native engine tags every candidate with the first section of its description that is not
 * rejected; all sections share one transport (BUNDLE). Older engines always said mid "0", index 0,
 * and a browser that rejected that section (Firefox without H.264 rejects the video) drops such
 * candidates, so they are moved to the first section of our BUNDLE group: the same transport.
 */
export function retargetToBundle(init, localSdp) {
  if (!localSdp || init.sdpMid == null) return init;
  const group = localSdp.match(/^a=group:BUNDLE (.+)$/m);
  if (!group) return init;
  const bundled = group[1].trim().split(/\s+/);
  if (bundled.includes(init.sdpMid)) return init;
  const mids = [...localSdp.matchAll(/^a=mid:(\S+)/gm)].map((m) => m[1]);
  const index = mids.indexOf(bundled[0]);
  return { ...init, sdpMid: bundled[0], sdpMLineIndex: index >= 0 ? index : null };
}

/** A data-channel field that may be absent, or else must have this `typeof`. */
function optional(value, type) {
  return value === undefined || typeof value === type;
}

/** A `media` message's `screen`: a non-empty string of at most MAX_STREAM_ID characters, or
 *  null (absent, null or anything else means "not sharing"). */
export function screenField(value) {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_STREAM_ID
    ? value : null;
}

export class Peer {
  constructor({ id, name, myId, iceServers, localStream, screen, sendSignal, handlers }) {
    this.id = id;
    this.name = name;
    this.polite = myId < id;
    this.sendSignal = sendSignal;
    this.h = handlers;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.pendingCandidates = [];
    this.lastRestart = 0;
    this.disconnectTimer = null;
    this.code = null;
    this.closed = false;
    this.lastError = null;
    /** The remote camera and microphone, as one stream (what its tile shows). */
    this.remoteStream = new MediaStream();
    this.remoteMedia = { mic: true, camera: true, screen: null };
    /** Every live remote video track, in arrival order: {track, stream} (stream: its msid). */
    this.remoteVideos = [];
    /** The remote video entry currently taken as its screen share, or null. */
    this.remoteScreen = null;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], bundlePolicy: "max-bundle" });
    this.senders = { audio: null, video: null, screen: null };
    for (const kind of ["audio", "video"]) {
      const track = localStream?.getTracks().find((t) => t.kind === kind);
      if (track) {
        this.senders[kind] = this.pc.addTrack(track, localStream);
      }
    }
    // Added after the camera, so an offer from the other side matches our camera (not the
    // screen) to its video section; the screen then comes with our renegotiation.
    if (screen) this.addScreen(screen.track, screen.stream);
    this.chat = this.pc.createDataChannel("chat", { negotiated: true, id: 0, ordered: true });
    /** Chat texts waiting for the channel, oldest first: {text, at: Date.now()}. */
    this.outbox = [];
    /** The other side has sent something on the channel since it opened, so its side is open
     *  too: only then does chat go out (webrtc-rs drops a message that reaches a negotiated
     *  channel the moment before its own side has opened it; everyone sends its media state on
     *  open and every 5 s, so this comes at once). */
    this.remoteSpoke = false;
    this.chat.onopen = () => {
      this.h.onChatOpen?.();
      this.flushChat();
    };
    this.chat.onclose = () => {
      this.remoteSpoke = false;
    };
    this.chat.onmessage = (ev) => this.onData(ev.data);
    this.pc.ontrack = (ev) => {
      if (ev.track.kind === "video") {
        this.onRemoteVideo(ev.track, ev.streams[0] || null);
        return;
      }
      this.remoteStream.getAudioTracks().forEach((t) => this.remoteStream.removeTrack(t));
      this.remoteStream.addTrack(ev.track);
      this.h.onTrack?.(this.remoteStream);
    };
    this.pc.onnegotiationneeded = () => this.onNegotiationNeeded();
    this.pc.onicecandidate = ({ candidate }) => {
      if (!candidate) {
        this.sendSignal({ kind: "end_of_candidates" });
      } else if (candidate.candidate) {
        this.sendSignal({
          kind: "candidate",
          candidate: candidate.candidate,
          sdp_mid: candidate.sdpMid ?? undefined,
          sdp_mline_index: candidate.sdpMLineIndex ?? undefined,
          username_fragment: candidate.usernameFragment ?? undefined,
        });
      }
    };
    this.pc.onconnectionstatechange = () => this.onConnectionState();
  }

  /** Receive-only transceivers for what we do not send, so an offer of ours still asks for it. */
  addReceiveOnly() {
    for (const kind of ["audio", "video"]) {
      if (!this.senders[kind]) this.pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  preferH264() {
    const codecs = preferredVideoCodecs();
    if (!codecs) return;
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track?.kind === "video" && t.setCodecPreferences && !t.stopped) {
        try {
          t.setCodecPreferences(codecs);
        } catch (e) {
          console.warn("setCodecPreferences", e);
        }
      }
    }
  }

  /** Renegotiates after the first negotiation (a screen track added or removed). The first
   *  offer is the newcomer's alone, so before it completes this does nothing; a change made
   *  meanwhile (or during another offer of ours, which then carries it) fires
   *  `negotiationneeded` again once that negotiation has settled, if still needed. */
  onNegotiationNeeded() {
    if (this.closed || this.makingOffer || !this.pc.currentRemoteDescription
      || this.pc.signalingState !== "stable") return;
    this.offer();
  }

  /** Creates and sends an offer (the newcomer's first one, a renegotiation or an ICE restart). */
  async offer({ iceRestart = false } = {}) {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      this.preferH264();
      const offer = await this.pc.createOffer({ iceRestart });
      if (this.pc.signalingState !== "stable") return; // an offer arrived meanwhile
      await this.pc.setLocalDescription(offer);
      this.sendSignal({ kind: iceRestart ? "ice_restart" : "offer", sdp: this.pc.localDescription.sdp });
    } catch (e) {
      this.lastError = `offer: ${e.name}: ${e.message}`;
      console.warn(`offer to ${this.name} failed`, e);
    } finally {
      this.makingOffer = false;
    }
  }

  /** A signal from this participant. */
  async onSignal(signal) {
    if (this.closed) return;
    try {
      switch (signal.kind) {
        case "offer":
        case "ice_restart":
          await this.onDescription({ type: "offer", sdp: signal.sdp });
          break;
        case "answer":
          await this.onDescription({ type: "answer", sdp: signal.sdp });
          break;
        case "candidate":
          await this.onCandidate(signal);
          break;
        default:
          break;
      }
    } catch (e) {
      this.lastError = `${signal.kind}: ${e.name}: ${e.message}`;
      console.warn(`signal ${signal.kind} from ${this.name}`, e);
    }
  }

  async onDescription(desc) {
    const collision = desc.type === "offer"
      && (this.makingOffer || this.pc.signalingState !== "stable");
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    if (desc.type === "answer" && this.pc.signalingState !== "have-local-offer") {
      return; // stale: the native side drops those too
    }
    // A polite side with an offer pending rolls back implicitly here.
    await this.pc.setRemoteDescription(desc);
    for (const c of this.pendingCandidates.splice(0)) await this.addCandidate(c);
    if (desc.type === "offer") {
      this.preferH264();
      await this.pc.setLocalDescription();
      this.sendSignal({ kind: "answer", sdp: this.pc.localDescription.sdp });
    }
  }

  async onCandidate(signal) {
    const init = {
      candidate: signal.candidate,
      sdpMid: signal.sdp_mid ?? null,
      sdpMLineIndex: signal.sdp_mline_index ?? null,
      usernameFragment: signal.username_fragment ?? null,
    };
    if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(init);
      return;
    }
    await this.addCandidate(init);
  }

  async addCandidate(init) {
    try {
      await this.pc.addIceCandidate(retargetToBundle(init, this.pc.localDescription?.sdp));
    } catch (e) {
      if (!this.ignoreOffer) {
        this.lastError = `candidate: ${e.name}: ${e.message}`;
        console.debug("candidate refused", e);
      }
    }
  }

  onConnectionState() {
    const state = this.pc.connectionState;
    this.h.onState?.(state);
    clearTimeout(this.disconnectTimer);
    if (state === "connected") {
      if (!this.code) this.computeCode();
    } else if (state === "failed") {
      this.restartIce();
    } else if (state === "disconnected" && !this.polite) {
      this.disconnectTimer = setTimeout(() => {
        if (this.pc.connectionState === "disconnected") this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  async computeCode() {
    const code = await verificationCodeFromSdp(
      this.pc.currentLocalDescription?.sdp, this.pc.currentRemoteDescription?.sdp);
    if (code && !this.code) {
      this.code = code;
      this.h.onCode?.(code);
    }
  }

  restartIce() {
    if (this.closed || Date.now() - this.lastRestart < RESTART_INTERVAL_MS) return;
    this.lastRestart = Date.now();
    this.offer({ iceRestart: true });
  }

  onData(data) {
    if (!this.remoteSpoke) {
      this.remoteSpoke = true;
      this.flushChat();
    }
    if (typeof data !== "string") return;
    let msg = null;
    try {
      msg = JSON.parse(data);
    } catch {
      msg = null;
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
      this.h.onChat?.(data); // plain text from a client that does not wrap chat in JSON
    } else if (msg.t === "chat" && optional(msg.text, "string")) {
      this.h.onChat?.(msg.text ?? "");
    } else if (msg.t === "media" && optional(msg.mic, "boolean") && optional(msg.camera, "boolean")) {
      this.remoteMedia = {
        mic: msg.mic !== false, camera: msg.camera !== false, screen: screenField(msg.screen),
      };
      // Before classifying: the call must know who shares before it hears of the track.
      this.h.onMedia?.(this.remoteMedia);
      this.classifyVideo();
    }
    // Any other object (unknown or missing `t`, wrong field types) is ignored.
  }

  /** Sends a chat message now if the channel is ready (open, and the other side has spoken on
   *  it) and nothing is waiting (true), else queues it for when it is (false). */
  sendChat(text) {
    if (!this.outbox.length && this.remoteSpoke && this.sendData({ t: "chat", text })) return true;
    this.outbox.push({ text, at: Date.now() });
    return false;
  }

  flushChat() {
    if (!this.remoteSpoke) return;
    while (this.outbox.length && this.sendData({ t: "chat", text: this.outbox[0].text })) {
      this.outbox.shift();
    }
  }

  /** Removes and returns the queued texts that waited `olderThanMs` or more (all by default). */
  takeUndelivered(olderThanMs = 0) {
    const now = Date.now();
    let n = 0;
    while (n < this.outbox.length && now - this.outbox[n].at >= olderThanMs) n += 1;
    return this.outbox.splice(0, n).map((m) => m.text);
  }

  /** Our media state; `screen` is our screen stream's id while we share (else left out). */
  sendMediaState(mic, camera, screen = null) {
    return this.sendData(screen ? { t: "media", mic, camera, screen } : { t: "media", mic, camera });
  }

  sendData(obj) {
    if (this.chat.readyState !== "open") return false;
    this.chat.send(JSON.stringify(obj));
    return true;
  }

  /** Sends our screen share `track` (of `stream`, whose id we announce) to this participant as
   *  a second video track; `negotiationneeded` renegotiates. */
  addScreen(track, stream) {
    if (this.closed || this.senders.screen) return;
    this.senders.screen = this.pc.addTrack(track, stream);
    this.tuneScreenSender(this.senders.screen);
  }

  /** Stops sending our screen share (renegotiates too). */
  removeScreen() {
    const sender = this.senders.screen;
    this.senders.screen = null;
    if (!sender || this.closed) return;
    try {
      this.pc.removeTrack(sender);
    } catch (e) {
      console.warn("removeTrack (screen)", e);
    }
  }

  /** Keeps the screen's resolution under load (text stays legible) and caps its bitrate; not
   *  every browser supports these. */
  async tuneScreenSender(sender) {
    try {
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      if (!params.encodings?.length) params.encodings = [{}];
      params.encodings[0].maxBitrate = SCREEN_MAX_BITRATE;
      await sender.setParameters(params);
    } catch (e) {
      console.info("screen sender parameters not supported", e);
    }
  }

  /** A remote video track: the camera, its screen share, or not known yet (a screen whose
   *  announcement has not arrived). */
  onRemoteVideo(track, stream) {
    if (this.remoteVideos.some((v) => v.track === track)) return;
    const entry = { track, stream: stream || new MediaStream([track]) };
    this.remoteVideos.push(entry);
    const gone = () => {
      this.remoteVideos = this.remoteVideos.filter((v) => v !== entry);
      this.classifyVideo();
    };
    // The sender removed it (renegotiation) or the connection closed.
    entry.stream.addEventListener("removetrack", (ev) => { if (ev.track === track) gone(); });
    track.addEventListener("ended", gone);
    this.classifyVideo();
  }

  /** Whether a remote video entry is the screen: its msid stream id is the one the peer
   *  announced, or the native engine's screen prefix. */
  isScreen(entry) {
    const id = entry.stream.id;
    return id === this.remoteMedia.screen || id.startsWith(NATIVE_SCREEN_PREFIX);
  }

  /** Sorts the remote video tracks into camera and screen again (a track arrived or left, or
   *  the announcement changed) and reports what changed. The camera is the first video track
   *  that is not the screen (it comes with the first negotiation); the screen the latest. */
  classifyVideo() {
    const live = this.remoteVideos.filter((v) => v.track.readyState === "live");
    const camera = live.find((v) => !this.isScreen(v)) || null;
    const screen = live.filter((v) => this.isScreen(v)).pop() || null;
    const shown = this.remoteStream.getVideoTracks()[0] || null;
    const wanted = camera?.track || null;
    if (wanted !== shown) {
      if (shown) this.remoteStream.removeTrack(shown);
      if (wanted) this.remoteStream.addTrack(wanted);
      this.h.onTrack?.(this.remoteStream);
    }
    if (screen !== this.remoteScreen) {
      this.remoteScreen = screen;
      this.h.onScreen?.(screen ? screen.stream : null);
    }
  }

  /** Swaps the track we send of `kind` (device change) without renegotiating. */
  async replaceTrack(kind, track) {
    const sender = this.senders[kind];
    if (sender) await sender.replaceTrack(track);
  }

  /** A summary of getStats(): what we decode from this participant (`video` its camera,
   *  `screen` its screen share) and what we send (`sent.video`, `sent.screen`, `sent.audio`). */
  async stats() {
    const report = await this.pc.getStats();
    const codecs = new Map();
    report.forEach((s) => { if (s.type === "codec") codecs.set(s.id, s); });
    const out = {
      video: null, screen: null, audio: null, sent: { video: null, screen: null, audio: null },
      rtt_ms: null, candidate_type: null,
    };
    const pick = (s, keys) => Object.fromEntries(keys.map((k) => [k, s[k] ?? null]));
    const cameraTrack = this.remoteStream.getVideoTracks()[0]?.id ?? null;
    const screenTrack = this.remoteScreen?.track.id ?? null;
    const midOf = (sender) => (sender
      ? this.pc.getTransceivers().find((t) => t.sender === sender)?.mid ?? null : null);
    const cameraMid = midOf(this.senders.video);
    const screenMid = midOf(this.senders.screen);
    report.forEach((s) => {
      const codec = codecs.get(s.codecId);
      if (s.type === "inbound-rtp" && s.kind === "video") {
        // A screen that was shared and stopped leaves its receiver's stats behind: skipped.
        const which = s.trackIdentifier === screenTrack ? "screen"
          : s.trackIdentifier === cameraTrack || (!cameraTrack && !out.video) ? "video" : null;
        if (!which) return;
        out[which] = {
          ...pick(s, ["framesDecoded", "framesReceived", "framesDropped", "frameWidth", "frameHeight",
            "framesPerSecond", "bytesReceived", "packetsLost", "keyFramesDecoded", "freezeCount",
            "jitterBufferDelay", "jitterBufferEmittedCount", "totalDecodeTime", "decoderImplementation"]),
          codec: codec?.mimeType ?? null,
          fmtp: codec?.sdpFmtpLine ?? null,
        };
      } else if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.audio = {
          ...pick(s, ["totalSamplesReceived", "concealedSamples", "bytesReceived", "packetsLost",
            "audioLevel", "jitterBufferDelay", "jitterBufferEmittedCount"]),
          codec: codec?.mimeType ?? null,
        };
      } else if (s.type === "outbound-rtp") {
        const which = s.kind !== "video" ? s.kind
          : screenMid != null && s.mid === screenMid ? "screen"
            : cameraMid == null || s.mid === cameraMid ? "video" : null;
        if (!which) return; // a screen shared earlier
        out.sent[which] = {
          ...pick(s, ["framesEncoded", "bytesSent", "frameWidth", "frameHeight", "framesPerSecond",
            "encoderImplementation", "qualityLimitationReason"]),
          codec: codec?.mimeType ?? null,
        };
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        if (s.currentRoundTripTime != null) out.rtt_ms = s.currentRoundTripTime * 1000;
        const local = report.get(s.localCandidateId);
        out.candidate_type = local?.candidateType ?? null;
      }
    });
    return out;
  }

  /** Whether an offer with `sdp` comes from a new remote RTCPeerConnection: its DTLS
   *  fingerprint differs from the one this connection already applied. A native peer whose
   *  DTLS handshake died re-creates its connection and offers from it (docs/signaling-protocol.md,
   *  "Peer to peer"); a DTLS restart is not a renegotiation, so this connection is replaced. */
  offerIsFromNewConnection(sdp) {
    const known = fingerprintOf(this.pc.remoteDescription?.sdp || "");
    const offered = fingerprintOf(sdp || "");
    return Boolean(known && offered && known !== offered);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.disconnectTimer);
    try {
      this.chat.close();
    } catch { /* already closed */ }
    this.pc.close();
  }
}
