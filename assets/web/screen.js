// Screen sharing on the call screen: the "Share screen" control, the "You are sharing your
// screen" banner with its preview and Stop button, and the presenter layout (the shared screen
// large, the participants' cameras in a strip below it; double-click the screen for 1:1 and
// back). The sharing itself lives in call.js (Call.startScreen/stopScreen, ui.presenter); this
// file only renders it. app.js calls initScreenUi once, then the functions below.

const $ = (id) => document.getElementById(id);

const view = {
  /** () => the current Call or null. */
  getCall: () => null,
  /** Shows a short message (app.js's toast). */
  toast: () => {},
  /** id -> display name. */
  nameOf: (id) => id,
  /** Our own share: its MediaStream, or null. */
  local: null,
  /** The remote screen shown: {id, stream}, or null. */
  presenter: null,
  /** "fit" (the whole screen, letterboxed) or "actual" (1:1 pixels, scrollable). */
  fit: "fit",
  /** The picker is open: the button waits. */
  picking: false,
  /** Frames the page put on screen from the remote screen (requestVideoFrameCallback). */
  framesShown: 0,
  /** Bumped for each new remote screen, so an old stream's frame callbacks stop counting. */
  frameGeneration: 0,
  /** The last getDisplayMedia failure, as shown to the user. */
  lastError: null,
};

export function screenShareSupported() {
  return typeof navigator.mediaDevices?.getDisplayMedia === "function";
}

/** Wires the control, banner and presenter view. */
export function initScreenUi({ getCall, toast, nameOf }) {
  Object.assign(view, { getCall, toast, nameOf });
  $("screen-toggle").addEventListener("click", toggleScreen);
  $("share-stop").addEventListener("click", () => view.getCall()?.stopScreen("user"));
  $("presenter-view").addEventListener("dblclick", () => setFit(view.fit === "fit" ? "actual" : "fit"));
  $("presenter-view").addEventListener("keydown", (e) => {
    if (e.key === "Enter") setFit(view.fit === "fit" ? "actual" : "fit");
  });
  updateScreenControl();
}

/** Starts sharing, or stops our share. */
async function toggleScreen() {
  const call = view.getCall();
  if (!call || view.picking || $("screen-toggle").disabled) return;
  if (call.screen) {
    call.stopScreen("user");
    return;
  }
  view.picking = true;
  view.lastError = null;
  updateScreenControl();
  try {
    await call.startScreen();
  } catch (e) {
    // Cancelled in the browser's picker (or screen capture blocked): nothing was shared.
    view.lastError = e.name === "NotAllowedError"
      ? "Screen sharing was cancelled or is not allowed, so nothing is shared."
      : `Cannot share your screen (${e.name || "error"}: ${e.message}).`;
    view.toast(view.lastError);
  } finally {
    view.picking = false;
    updateScreenControl();
  }
}

/** Our share started (`stream`) or stopped (null; `why`: user, ended, replaced, left). */
export function showLocalScreen(stream, why) {
  view.local = stream;
  $("share-preview").srcObject = stream;
  $("share-banner").hidden = !stream;
  if (stream) {
    $("share-preview").play().catch(() => {});
  } else if (why === "ended") {
    view.toast("You stopped sharing your screen.");
  }
  updateScreenControl();
}

/** Shows participant `id`'s screen `stream` large, or (null) goes back to the grid. */
export function showPresenter(id, stream) {
  const changed = view.presenter?.id !== id;
  view.presenter = id ? { id, stream } : null;
  const video = $("presenter-video");
  if (video.srcObject !== stream) {
    video.srcObject = stream;
    view.framesShown = 0;
    view.frameGeneration += 1;
    if (stream) {
      countFrames(video);
      video.play().catch(() => {});
    }
  }
  if (changed) setFit("fit");
  $("presenter").hidden = !id;
  $("stage").classList.toggle("presenting", !!id);
  renderPresenterName();
}

/** The presenter's name strip ("Ben's screen"). */
function renderPresenterName() {
  const id = view.presenter?.id;
  const name = id ? view.nameOf(id) : "";
  $("presenter-name").textContent = id ? `${name}’s screen` : "";
  $("presenter-view").setAttribute("aria-label", id
    ? `${name}’s shared screen (double-click: ${view.fit === "fit" ? "actual size" : "fit to window"})`
    : "Shared screen");
}

function setFit(fit) {
  view.fit = fit;
  $("presenter-view").classList.toggle("actual", fit === "actual");
  $("presenter-view").title = fit === "fit" ? "Double-click for actual size" : "Double-click to fit";
  renderPresenterName();
}

/** The control's label, icon and red state follow our share. */
export function updateScreenControl() {
  const button = $("screen-toggle");
  const sharing = !!view.local;
  const supported = screenShareSupported();
  button.disabled = !supported || view.picking || !view.getCall();
  button.setAttribute("aria-pressed", String(sharing));
  button.querySelector(".label").textContent = sharing ? "Stop sharing" : "Share screen";
  button.title = !supported
    ? (window.isSecureContext
      ? "This browser cannot share a screen."
      : "Sharing a screen needs a secure page (https, or localhost).")
    : sharing ? "Stop sharing your screen" : "Share your screen, a window or a tab";
}

/** Counts frames put on screen by `video` (requestVideoFrameCallback, where supported). */
function countFrames(video) {
  if (!video.requestVideoFrameCallback) return;
  const generation = view.frameGeneration;
  const tick = () => {
    if (generation !== view.frameGeneration) return;
    view.framesShown += 1;
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

/** Back to no share and the grid (the call ended). */
export function resetScreenUi() {
  showLocalScreen(null, "left");
  showPresenter(null, null);
  view.lastError = null;
}

/** A plain snapshot for automation (window.confab.state().share). */
export function screenState() {
  const video = $("presenter-video");
  const preview = $("share-preview");
  return {
    sharing: !!view.local,
    streamId: view.local?.id ?? null,
    presenter: view.presenter?.id ?? null,
    presenterName: view.presenter ? view.nameOf(view.presenter.id) : null,
    layout: view.presenter ? "presenter" : "grid",
    fit: view.fit,
    framesShown: view.framesShown,
    videoWidth: view.presenter ? video.videoWidth : 0,
    videoHeight: view.presenter ? video.videoHeight : 0,
    previewWidth: view.local ? preview.videoWidth : 0,
    bannerShown: !$("share-banner").hidden,
    buttonLabel: $("screen-toggle").querySelector(".label").textContent,
    lastError: view.lastError,
  };
}
