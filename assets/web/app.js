// The Confab web client's UI: the join form (with camera preview and device pickers), the call
// screen (video grid with names, mute/camera badges, security codes, chat, controls) and the
// "call ended" screen. The call itself lives in call.js; this file only renders it (screen
// sharing's control, banner and presenter layout: screen.js).
//
// URLs: `/` shows the join form; `/r/ROOM` fills in ROOM. `?name=NAME` fills in the name,
// `&camera=pattern` picks the test-pattern camera, `&fps=N` caps the camera's frame rate, and
// `&autojoin=1` joins without waiting for a click (links from scripts and the interop tests).
//
// `window.confab` exposes the state for automation: state() (its `share`: screen sharing, see
// screen.js), stats(), verificationCode(), probeMarkers(id) / markers(id) (frame-marker latency
// from a native peer's test pattern), screenSenderParameters(id).

import { Call } from "./call.js";
import { defaultServerUrl } from "./signaling.js";
import { verificationCode } from "./verification.js";
import { MarkerProbe, patternTrack } from "./marker.js";
import { preferredVideoCodecs } from "./peer.js";
import {
  initScreenUi, resetScreenUi, screenState, showLocalScreen, showPresenter, updateScreenControl,
} from "./screen.js";

/** The camera picker's value for the built-in test pattern (marker.js). */
const PATTERN = "pattern";

const $ = (id) => document.getElementById(id);

/** What the user sees when joining fails, by the server's error code. */
const JOIN_ERRORS = {
  room_full: "This room is full.",
  wrong_password: "Wrong password for this room. (If the room has no password, leave it empty.)",
  too_many_rooms: "The server has too many rooms open right now. Try again later.",
  invalid_field: "Names and rooms are 1–64 characters, without control characters.",
  unreachable: "Cannot reach the Confab server. Is it still running?",
  timeout: "The Confab server did not answer. Check the address and try again.",
  rate_limited: "Too many attempts; wait a moment and try again.",
};

const state = {
  localStream: null,
  call: null,
  tiles: new Map(),
  peers: new Map(), // id -> {name, state, code, media, firstFrameMs}
  chat: [],
  unread: 0,
  error: null,
  banner: null,
  screen: "lobby",
  startedAt: 0,
  timer: null,
  lastJoin: null,
  /** The last toasts shown (newest last), for automation: toasts vanish after 4 s. */
  toasts: [],
};

function roomFromPath() {
  const m = window.location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function randomRoom() {
  const words = ["amber", "brisk", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris",
    "juniper", "kite", "lumen", "maple", "nova", "orbit", "pine", "quartz", "river", "sage", "tide"];
  const pick = () => words[Math.floor(Math.random() * words.length)];
  return `${pick()}-${pick()}-${Math.floor(Math.random() * 90 + 10)}`;
}

function show(screen) {
  state.screen = screen;
  for (const id of ["lobby", "call", "ended"]) $(id).hidden = id !== screen;
}

function toast(text) {
  const el = document.createElement("div");
  el.className = "toast";
  el.textContent = text;
  state.toasts = [...state.toasts.slice(-19), text];
  $("toasts").append(el);
  setTimeout(() => el.remove(), 4000);
}

function setJoinError(text) {
  state.error = text;
  $("join-error").textContent = text || "";
  $("join-error").hidden = !text;
}

function setBanner(text, kind = "warn") {
  state.banner = text;
  const b = $("banner");
  b.textContent = text || "";
  b.className = `banner ${kind}`;
  b.hidden = !text;
}

// ---------- local media ----------

function mediaSupported() {
  return !!navigator.mediaDevices?.getUserMedia;
}

async function openLocalMedia() {
  if (!mediaSupported()) {
    const note = window.isSecureContext
      ? "This browser cannot use a camera or microphone here."
      : "Camera and microphone need a secure page (https, or localhost). You can still join: you will see and hear the others and can chat.";
    showMediaNote(note);
    return null;
  }
  const wantVideo = $("camera-select").value;
  const wantAudio = $("mic-select").value;
  const fps = Number(new URLSearchParams(window.location.search).get("fps")) || 30;
  if (wantVideo === PATTERN) {
    const audio = await navigator.mediaDevices
      .getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } })
      .then((s) => s.getAudioTracks(), () => []);
    return new MediaStream([patternTrack({ fps }), ...audio]);
  }
  const constraints = {
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: fps, max: fps },
      ...(wantVideo ? { deviceId: { exact: wantVideo } } : {}) },
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true,
      ...(wantAudio ? { deviceId: { exact: wantAudio } } : {}) },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (e) {
    // Try each kind alone: a machine with a microphone but no camera still joins with sound.
    const parts = [];
    for (const kind of ["audio", "video"]) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints[kind] });
        parts.push(...s.getTracks());
      } catch { /* this kind is unavailable */ }
    }
    if (parts.length) {
      const missing = parts.some((t) => t.kind === "video") ? "microphone" : "camera";
      showMediaNote(`No ${missing} available (${e.name}); joining without it.`);
      return new MediaStream(parts);
    }
    showMediaNote(e.name === "NotAllowedError"
      ? "Camera and microphone are blocked for this page. You can still join to watch, listen and chat."
      : `No camera or microphone available (${e.name}). You can still join to watch, listen and chat.`);
    return null;
  }
}

function showMediaNote(text) {
  const note = $("media-note");
  if (text && note.textContent && !note.textContent.includes(text)) {
    note.textContent = `${note.textContent} ${text}`;
  } else {
    note.textContent = text;
  }
  note.hidden = !note.textContent;
}

async function fillDevicePickers() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of [["videoinput", $("camera-select")], ["audioinput", $("mic-select")]]) {
    const current = state.localStream?.getTracks()
      .find((t) => (kind === "videoinput" ? t.kind === "video" : t.kind === "audio"))
      ?.getSettings().deviceId;
    const wasPattern = select.value === PATTERN;
    select.replaceChildren();
    const list = devices.filter((d) => d.kind === kind);
    if (!list.length && kind !== "videoinput") {
      select.append(new Option("None found", ""));
      select.disabled = true;
      continue;
    }
    select.disabled = false;
    list.forEach((d, i) => {
      const label = d.label || `${kind === "videoinput" ? "Camera" : "Microphone"} ${i + 1}`;
      select.append(new Option(label, d.deviceId, false, !wasPattern && d.deviceId === current));
    });
    if (kind === "videoinput") {
      select.append(new Option("Test pattern", PATTERN, false, wasPattern));
    }
  }
}

async function startPreview() {
  state.localStream?.getTracks().forEach((t) => t.stop());
  state.localStream = await openLocalMedia();
  $("preview").srcObject = state.localStream;
  updatePreviewOff();
  await fillDevicePickers();
}

function updatePreviewOff() {
  const hasVideo = !!state.localStream?.getVideoTracks().length;
  $("preview-off").hidden = hasVideo && $("join-camera").checked;
  $("preview-off").textContent = hasVideo ? "Camera off" : "No camera";
}

async function changeDevice(kind) {
  const select = kind === "video" ? $("camera-select") : $("mic-select");
  if (!select.value || (!mediaSupported() && select.value !== PATTERN)) return;
  try {
    const fps = Number(new URLSearchParams(window.location.search).get("fps")) || 30;
    const track = select.value === PATTERN ? patternTrack({ fps })
      : (await navigator.mediaDevices.getUserMedia({ [kind]: { deviceId: { exact: select.value } } }))
        .getTracks()[0];
    const s = new MediaStream([track]);
    if (state.call && !state.call.localStream) {
      track.stop();
      toast("You joined without camera and microphone; rejoin to use them.");
      return;
    }
    if (state.call) {
      await state.call.replaceTrack(track);
      $("self-video").srcObject = state.localStream;
      updateControls();
    } else if (state.localStream) {
      const old = state.localStream.getTracks().find((t) => t.kind === kind);
      if (old) {
        state.localStream.removeTrack(old);
        old.stop();
      }
      state.localStream.addTrack(track);
    } else {
      state.localStream = s;
    }
    $("preview").srcObject = state.localStream;
  } catch (e) {
    toast(`Cannot switch ${kind === "video" ? "camera" : "microphone"}: ${e.message}`);
  }
}

// ---------- joining ----------

async function join(ev) {
  ev?.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim();
  const password = $("password").value;
  if (!name) {
    setJoinError("Please enter your name.");
    $("name").focus();
    return;
  }
  if (!room) {
    setJoinError("Please enter a room.");
    $("room").focus();
    return;
  }
  setJoinError(null);
  localStorage.setItem("confab.name", name);
  $("join-button").disabled = true;
  $("join-button").textContent = "Joining…";
  if (!state.localStream && mediaSupported()) await startPreview();
  state.lastJoin = { name, room, password };
  const call = new Call({
    url: defaultServerUrl(), room, name, password, localStream: state.localStream, ui: callUi(),
  });
  call.mic = call.mic && $("join-mic").checked;
  call.camera = call.camera && $("join-camera").checked;
  call.localStream?.getAudioTracks().forEach((t) => { t.enabled = call.mic; });
  call.localStream?.getVideoTracks().forEach((t) => { t.enabled = call.camera; });
  state.call = call;
  try {
    await call.join();
  } catch (e) {
    state.call = null;
    $("join-button").disabled = false;
    $("join-button").textContent = "Join";
    setJoinError(JOIN_ERRORS[e.code] || e.message || String(e));
    if (e.code === "wrong_password") $("password").focus();
    return;
  }
  enterCallScreen(room);
}

function enterCallScreen(room) {
  $("join-button").disabled = false;
  $("join-button").textContent = "Join";
  $("call-room").textContent = room;
  const link = `${window.location.origin}/r/${encodeURIComponent(room)}`;
  $("invite-link").href = link;
  $("invite-link").textContent = link;
  if (window.location.pathname !== `/r/${encodeURIComponent(room)}`) {
    history.replaceState(null, "", `/r/${encodeURIComponent(room)}`);
  }
  $("self-video").srcObject = state.localStream;
  // The camera and microphone pickers move from the form into the call's device panel.
  $("device-panel").append($("devices"));
  $("device-panel").hidden = true;
  document.title = `${room} – Confab`;
  state.chat = [];
  $("chat-log").replaceChildren();
  state.startedAt = performance.now();
  clearInterval(state.timer);
  state.timer = setInterval(updateTimer, 1000);
  updateTimer();
  setBanner(null);
  show("call");
  updateControls();
  updateGrid();
}

function updateTimer() {
  const s = Math.floor((performance.now() - state.startedAt) / 1000);
  const two = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  $("call-timer").textContent = h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

// ---------- the call's callbacks ----------

function callUi() {
  return {
    participantJoined(id, name) {
      state.peers.set(id, {
        name, state: "new", code: null, media: { mic: true, camera: true, screen: null },
        firstFrameMs: null,
        seenAt: performance.now(),
      });
      ensureTile(id);
      toast(`${name} joined`);
    },
    participantLeft(id) {
      const p = state.peers.get(id);
      if (p) toast(`${p.name} left`);
      state.peers.delete(id);
      state.tiles.get(id)?.probe?.stop();
      state.tiles.get(id)?.el.remove();
      state.tiles.delete(id);
      renderCodes();
      updateGrid();
    },
    stream(id, stream) {
      const tile = ensureTile(id);
      if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
      playTile(tile);
    },
    linkState(id, s) {
      const p = state.peers.get(id);
      if (!p) return;
      p.state = s;
      renderTile(id);
    },
    code(id, code) {
      const p = state.peers.get(id);
      if (!p) return;
      p.code = code;
      renderCodes();
      renderTile(id);
    },
    remoteMedia(id, media) {
      const p = state.peers.get(id);
      if (!p) return;
      p.media = media;
      renderTile(id);
    },
    localScreen(stream, why) {
      showLocalScreen(stream, why);
    },
    presenter(id, stream) {
      showPresenter(id, stream);
      updateGrid();
    },
    notice(text) {
      toast(text);
    },
    chatFailed(names, why) {
      toast(`Your message did not reach ${names.join(", ")} (${why}).`);
    },
    chat(message) {
      state.chat.push(message);
      appendChat(message);
      if (!message.mine && $("chat").hidden) {
        state.unread += 1;
        updateUnread();
        toast(`${message.name}: ${message.text.slice(0, 80)}`);
      }
    },
    signaling(s, detail) {
      if (s === "reconnecting") {
        setBanner("Reconnecting to the server… the call continues.");
        console.info("signaling lost:", detail);
      } else {
        setBanner(null);
      }
    },
    serverError(code, message) {
      if (code === "shutdown") {
        setBanner("The server is restarting… the call continues.");
      } else {
        console.warn("server refused a message:", code, message);
      }
    },
    ended(reason) {
      endCall(reason);
    },
  };
}

function ensureTile(id) {
  let tile = state.tiles.get(id);
  if (tile) return tile;
  const el = document.createElement("div");
  el.className = "tile";
  el.dataset.id = id;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  const avatar = document.createElement("div");
  avatar.className = "avatar";
  const bar = document.createElement("div");
  bar.className = "name-bar";
  const name = document.createElement("span");
  name.className = "name";
  // "Ben  (muted)", as in the desktop app's name strip.
  const mic = document.createElement("span");
  mic.className = "mic-off";
  mic.textContent = "(muted)";
  const status = document.createElement("span");
  status.className = "status";
  bar.append(name, mic, status);
  el.append(video, avatar, bar);
  $("grid").append(el);
  tile = { el, video, avatar, name, mic, status, hasFrame: false };
  state.tiles.set(id, tile);
  const onFirstFrame = () => {
    tile.hasFrame = true;
    const p = state.peers.get(id);
    // From the moment both of us were in the room to its first picture on screen.
    if (p && p.firstFrameMs == null) p.firstFrameMs = Math.round(performance.now() - p.seenAt);
    renderTile(id);
  };
  // A frame on screen (requestVideoFrameCallback), or at least decoded (loadeddata: headless
  // browsers may never present one).
  const once = () => { if (!tile.hasFrame) onFirstFrame(); };
  video.requestVideoFrameCallback?.(once);
  video.addEventListener("loadeddata", once, { once: true });
  renderTile(id);
  updateGrid();
  return tile;
}

function playTile(tile) {
  tile.video.play().catch((e) => {
    if (e.name === "NotAllowedError") {
      // Autoplay with sound needs a click on this page first.
      $("sound-button").hidden = false;
    }
  });
}

const STATUS_TEXT = {
  new: "connecting…", connecting: "connecting…", connected: "", disconnected: "reconnecting…",
  failed: "connection failed", closed: "disconnected",
};

function renderTile(id) {
  const tile = state.tiles.get(id);
  const p = state.peers.get(id);
  if (!tile || !p) return;
  tile.name.textContent = p.name;
  tile.avatar.textContent = initials(p.name);
  tile.mic.hidden = p.media.mic;
  const cameraOff = !p.media.camera;
  tile.avatar.hidden = tile.hasFrame && !cameraOff;
  tile.video.classList.toggle("hidden", cameraOff);
  tile.status.textContent = STATUS_TEXT[p.state] ?? p.state;
  tile.el.dataset.state = p.state;
  const described = [p.name, p.media.mic ? null : "muted", cameraOff ? "camera off" : null,
    STATUS_TEXT[p.state] || null].filter(Boolean).join(", ");
  tile.el.setAttribute("aria-label", described);
}

/** Up to two initials, one per word ("Ann Lee" -> "AL"), as the desktop app's avatars show. */
function initials(name) {
  const letters = name.split(/\s+/).filter(Boolean).slice(0, 2)
    .map((w) => [...w][0].toUpperCase()).join("");
  return letters || "?";
}

function renderCodes() {
  const list = $("codes");
  list.replaceChildren();
  const withCodes = [...state.peers.entries()].filter(([, p]) => p.code);
  if (!withCodes.length) return;
  const title = document.createElement("li");
  title.className = "codes-title";
  // "Security codes: Ben 3785 5401  Cy 7392 3409", one per person, as in the desktop app.
  title.textContent = withCodes.length === 1 ? "Security code:" : "Security codes:";
  list.append(title);
  for (const [id, p] of withCodes) {
    const li = document.createElement("li");
    li.dataset.codeFor = id;
    li.title = `Your connection with ${p.name}: read it to each other; if it matches, nobody is listening in.`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = p.name;
    const code = document.createElement("span");
    code.className = "code";
    code.textContent = p.code;
    li.append(who, " ", code);
    list.append(li);
  }
  const hint = document.createElement("li");
  hint.className = "codes-hint";
  hint.textContent = withCodes.length === 1
    ? "Read it to each other; if it matches, nobody is listening in."
    : "Read each code with that person; if it matches, nobody is listening in.";
  list.append(hint);
}

function updateGrid() {
  const n = state.tiles.size;
  $("waiting").hidden = n > 0;
  const cols = n <= 1 ? 1 : n <= 4 ? 2 : n <= 9 ? 3 : 4;
  $("grid").style.setProperty("--cols", String(cols));
}

function appendChat(m) {
  const li = document.createElement("li");
  li.className = m.mine ? "mine" : "theirs";
  const head = document.createElement("div");
  head.className = "meta";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = m.mine ? "You" : m.name;
  const time = document.createElement("time");
  time.textContent = m.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  head.append(who, time);
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text;
  li.append(head, text);
  $("chat-log").append(li);
  li.scrollIntoView({ block: "end" });
}

function updateUnread() {
  $("unread").textContent = String(state.unread);
  $("unread").hidden = state.unread === 0;
}

// ---------- controls ----------

function updateControls() {
  const call = state.call;
  if (!call) return;
  const hasMic = !!state.localStream?.getAudioTracks().length;
  const hasCam = !!state.localStream?.getVideoTracks().length;
  $("mic-toggle").disabled = !hasMic;
  $("camera-toggle").disabled = !hasCam;
  // The labels are the desktop app's; each button's SVG icon is aria-hidden, so its label is
  // its accessible name.
  label("mic-toggle", !hasMic ? "No microphone" : call.mic ? "Mute" : "Unmute");
  $("mic-toggle").setAttribute("aria-pressed", String(!call.mic));
  label("camera-toggle", !hasCam ? "No camera" : call.camera ? "Camera off" : "Camera on");
  $("camera-toggle").setAttribute("aria-pressed", String(!call.camera));
  $("self-off").hidden = hasCam && call.camera;
  $("self-video").classList.toggle("hidden", !(hasCam && call.camera));
  $("self-label").textContent = `${call.name} (you)${hasMic && call.mic ? "" : "  muted"}`;
  updatePanelButtons();
  updateScreenControl();
}

/** Sets the text label of control-bar button `id` (leaving its icon). */
function label(id, text) {
  $(id).querySelector(".label").textContent = text;
}

/** The chat and devices buttons say (and show, tinted) whether their panel is open. */
function updatePanelButtons() {
  $("chat-toggle").setAttribute("aria-expanded", String(!$("chat").hidden));
  $("devices-toggle").setAttribute("aria-expanded", String(!$("device-panel").hidden));
}

function toggleMic() {
  if (!state.call || $("mic-toggle").disabled) return;
  state.call.setMic(!state.call.mic);
  updateControls();
}

function toggleCamera() {
  if (!state.call || $("camera-toggle").disabled) return;
  state.call.setCamera(!state.call.camera);
  updateControls();
}

function toggleChat(open = $("chat").hidden) {
  $("chat").hidden = !open;
  updatePanelButtons();
  if (open) {
    state.unread = 0;
    updateUnread();
    $("chat-input").focus();
  }
}

function sendChat(ev) {
  ev.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text || !state.call) return;
  const waiting = state.call.sendChat(text);
  if (waiting === null) {
    // Nobody else is here: not sent, not shown as sent, and the text stays in the box.
    toast("Nobody else is in the call yet, so your message was not sent.");
    return;
  }
  if (waiting.length) toast(`Sending to ${waiting.join(", ")} once connected`);
  $("chat-input").value = "";
}

async function copyLink() {
  const link = $("invite-link").href;
  try {
    await navigator.clipboard.writeText(link);
    toast("Link copied");
  } catch {
    toast(`Share this link: ${link}`);
  }
}

function endCall(reason) {
  clearInterval(state.timer);
  for (const tile of state.tiles.values()) tile.el.remove();
  state.tiles.clear();
  state.peers.clear();
  state.call = null;
  state.localStream = null;
  resetScreenUi();
  $("codes").replaceChildren();
  $("join-form").insertBefore($("devices"), $("join-toggles"));
  document.title = "Confab";
  $("ended-reason").textContent = reason;
  show("ended");
}

function leave() {
  state.call?.leave();
}

// ---------- start ----------

function init() {
  const params = new URLSearchParams(window.location.search);
  const pathRoom = roomFromPath();
  $("room").value = pathRoom || params.get("room") || randomRoom();
  if (pathRoom) {
    $("lobby-lead").textContent = `You are joining “${pathRoom}”.`;
  }
  $("name").value = params.get("name") || localStorage.getItem("confab.name") || "";
  if (params.get("camera") === PATTERN) {
    $("camera-select").append(new Option("Test pattern", PATTERN, true, true));
  }
  $("join-form").addEventListener("submit", join);
  $("join-camera").addEventListener("change", updatePreviewOff);
  $("camera-select").addEventListener("change", () => changeDevice("video"));
  $("mic-select").addEventListener("change", () => changeDevice("audio"));
  $("mic-toggle").addEventListener("click", toggleMic);
  $("camera-toggle").addEventListener("click", toggleCamera);
  $("chat-toggle").addEventListener("click", () => toggleChat());
  $("chat-close").addEventListener("click", () => toggleChat(false));
  $("chat-form").addEventListener("submit", sendChat);
  $("copy-link").addEventListener("click", copyLink);
  $("devices-toggle").addEventListener("click", () => {
    $("device-panel").hidden = !$("device-panel").hidden;
    updatePanelButtons();
  });
  $("leave").addEventListener("click", leave);
  initScreenUi({
    getCall: () => state.call,
    toast,
    nameOf: (id) => state.peers.get(id)?.name ?? id,
  });
  $("sound-button").addEventListener("click", () => {
    for (const tile of state.tiles.values()) tile.video.play().catch(() => {});
    $("sound-button").hidden = true;
  });
  $("rejoin").addEventListener("click", async () => {
    show("lobby");
    if (state.lastJoin) $("password").value = state.lastJoin.password || "";
    await startPreview();
    join();
  });
  document.addEventListener("keydown", (e) => {
    if (state.screen !== "call" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement
      || e.target instanceof HTMLSelectElement) return;
    const key = e.key.toLowerCase();
    if (key === "m") toggleMic();
    else if (key === "v") toggleCamera();
    else if (key === "c") toggleChat();
    else return;
    e.preventDefault();
  });
  // Closing the tab says goodbye, so the others see us leave at once.
  window.addEventListener("pagehide", () => state.call?.leave());

  if (!preferredVideoCodecs()?.some((c) => c.mimeType.toLowerCase() === "video/h264")) {
    // Confab's desktop app speaks H.264 only (Firefox gets it as a plugin it downloads itself).
    showMediaNote("This browser has no H.264 video, which the Confab app uses: with app users you get audio and chat, but no video either way. Calls with other browsers work.");
  }
  const ready = startPreview();
  if (params.get("autojoin") === "1" && $("name").value) {
    ready.then(() => join());
  } else {
    ($("name").value ? $("join-button") : $("name")).focus();
  }
}

window.confab = {
  /** A plain snapshot of what the page shows. */
  state() {
    return {
      screen: state.screen,
      id: state.call?.myId ?? null,
      error: state.error,
      banner: state.banner,
      endedReason: state.screen === "ended" ? $("ended-reason").textContent : null,
      mic: state.call?.mic ?? null,
      camera: state.call?.camera ?? null,
      peers: [...state.peers.entries()].map(([id, p]) => ({
        id, name: p.name, state: p.state, code: p.code, mic: p.media.mic, camera: p.media.camera,
        screen: p.media.screen ?? null,
        firstFrameMs: p.firstFrameMs,
        signalingState: state.call?.peers.get(id)?.pc.signalingState ?? null,
        iceState: state.call?.peers.get(id)?.pc.iceConnectionState ?? null,
        chatOpen: state.call?.peers.get(id)?.chat.readyState === "open",
        lastError: state.call?.peers.get(id)?.lastError ?? null,
      })),
      chat: state.chat.map((m) => ({ from: m.from, name: m.name, text: m.text, mine: m.mine })),
      share: screenState(),
      toasts: state.toasts,
    };
  },
  /** getStats() summaries per participant id. */
  stats() {
    return state.call ? state.call.stats() : Promise.resolve({});
  },
  verificationCode,
  /** Every getStats() entry of the connection to `id` (for debugging an interop problem). */
  async rawStats(id) {
    const peer = state.call?.peers.get(id);
    if (!peer) return null;
    const out = [];
    (await peer.pc.getStats()).forEach((s) => out.push(s));
    return out;
  },
  /** What our screen's sender to `id` is set to (null while we do not share). */
  screenSenderParameters(id) {
    const sender = state.call?.peers.get(id)?.senders.screen;
    if (!sender) return null;
    const p = sender.getParameters();
    return {
      degradationPreference: p.degradationPreference ?? null,
      maxBitrate: p.encodings?.[0]?.maxBitrate ?? null,
    };
  },
  /** The current local and remote SDP of the connection to `id`. */
  descriptions(id) {
    const pc = state.call?.peers.get(id)?.pc;
    return pc ? { local: pc.localDescription?.sdp ?? null, remote: pc.remoteDescription?.sdp ?? null } : null;
  },
  /** Starts reading frame markers from participant `id`'s video (a native test pattern). */
  probeMarkers(id) {
    const tile = state.tiles.get(id);
    if (!tile) return false;
    tile.probe?.stop();
    tile.probe = new MarkerProbe(tile.video);
    return true;
  },
  /** What the marker probe of `id` saw so far. */
  markers(id) {
    return state.tiles.get(id)?.probe?.summary() ?? null;
  },
};

init();
