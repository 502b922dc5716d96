//! Screen sharing between two real browsers: the real `confab serve` serves the web client, and
//! two real headless Chromiums join one room through it. Chromium's fake devices give
//! `getDisplayMedia` a moving fake "screen" without a picker (see `Browser::start_with`); the
//! share button is clicked like a user would (`getDisplayMedia` needs that user activation).
//!
//! What is checked, from both pages' `window.confab.state()` and `getStats()`:
//! - a participant who joins while someone shares gets the screen in its new connection: the
//!   presenter layout, the screen's frames decoding (count rising, a size), the sharer's camera
//!   decoding next to it as a separate track;
//! - the sharer's banner, preview and "Stop sharing" control; double-click toggles 1:1;
//! - stopping (the banner's Stop) takes the other page back to the grid;
//! - the other participant shares mid-call (renegotiation) and the first one sees it;
//! - one share per room: sharing while the other shares stops theirs, with a notice, and both
//!   show the new share;
//! - the sharer's camera frames keep rising at every step;
//! - a cancelled picker (here: capture denied) leaves nothing shared and says so.
//!
//! Needs `chromium` and `chromium-driver` (`make deps` installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::time::Duration;

use common::browser::{Browser, Serve, native_join};
use serde_json::Value;
use tokio::sync::Mutex;

/// One browser test at a time: two Chromiums encode and decode on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(20);

/// A number in `v` at `path`, 0 when absent (not decoding yet).
fn count(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

fn toasts_contain(s: &Value, text: &str) -> bool {
    s["toasts"]
        .as_array()
        .is_some_and(|ts| ts.iter().any(|t| t.as_str() == Some(text)))
}

/// Joins `room` as `name` and returns the page's participant id.
async fn join(browser: &Browser, serve: &Serve, room: &str, name: &str) -> String {
    browser
        .goto(&format!(
            "{}/r/{room}?name={name}&fps=15&autojoin=1",
            serve.http_url
        ))
        .await;
    let s = browser
        .wait_state(&format!("{name} joining"), WAIT, |s| {
            s["screen"] == "call" && s["id"].is_string()
        })
        .await;
    s["id"].as_str().unwrap().to_owned()
}

/// Connected to exactly one participant, with a verification code.
fn connected(s: &Value) -> bool {
    s["peers"].as_array().is_some_and(|ps| {
        ps.len() == 1 && ps[0]["state"] == "connected" && ps[0]["code"].is_string()
    })
}

/// `viewer` shows `sharer`'s screen in the presenter layout, its frames decoding (the count
/// rising, a picture size) as a track apart from `sharer`'s camera; returns the last stats.
async fn assert_sees_screen(viewer: &Browser, sharer: &str, what: &str) -> Value {
    let s = viewer
        .wait_state(&format!("{what}: the presenter layout"), WAIT, |s| {
            s["share"]["layout"] == "presenter"
                && s["share"]["presenter"] == sharer
                && s["share"]["videoWidth"].as_u64().unwrap_or(0) > 0
        })
        .await;
    let first = viewer
        .wait_stats(&format!("{what}: screen frames decoded"), WAIT, |st| {
            count(&st[sharer], &["screen", "framesDecoded"]) > 0
                && count(&st[sharer], &["screen", "frameWidth"]) > 0
        })
        .await;
    let n0 = count(&first[sharer], &["screen", "framesDecoded"]);
    let later = viewer
        .wait_stats(&format!("{what}: screen frames rising"), WAIT, |st| {
            count(&st[sharer], &["screen", "framesDecoded"]) > n0 + 5
        })
        .await;
    let screen = &later[sharer]["screen"];
    let camera = &later[sharer]["video"];
    assert_eq!(screen["codec"], "video/H264", "{later:#}");
    assert!(count(screen, &["frameHeight"]) > 0, "{later:#}");
    assert!(
        count(camera, &["framesDecoded"]) > 0,
        "the camera is decoded apart from the screen: {later:#}"
    );
    let shown = viewer.state().await;
    eprintln!(
        "figures: {what}: screen {}x{} decoded {} ({} fps), on the page {}x{} with {} frames \
         presented; camera {}x{} decoded {}",
        screen["frameWidth"],
        screen["frameHeight"],
        screen["framesDecoded"],
        screen["framesPerSecond"],
        shown["share"]["videoWidth"],
        shown["share"]["videoHeight"],
        shown["share"]["framesShown"],
        camera["frameWidth"],
        camera["frameHeight"],
        camera["framesDecoded"],
    );
    assert!(s["share"]["presenterName"].is_string(), "{s:#}");
    // The sharer's tile keeps its camera; the screen is a track of its own.
    let tracks = viewer
        .eval(&format!(
            "const tile = document.querySelector('.tile[data-id=\"{sharer}\"] video'); \
             const screen = document.getElementById('presenter-video'); \
             const t = tile.srcObject.getVideoTracks(), p = screen.srcObject.getVideoTracks(); \
             return {{tile: t.length, screen: p.length, distinct: t[0].id !== p[0].id, \
                      tileWidth: tile.videoWidth}};"
        ))
        .await;
    assert_eq!(tracks["tile"], 1, "{tracks:#}");
    assert_eq!(tracks["screen"], 1, "{tracks:#}");
    assert_eq!(tracks["distinct"], true, "{tracks:#}");
    later
}

/// `viewer` is back to the grid, with no screen from anyone.
async fn assert_grid(viewer: &Browser, what: &str) {
    viewer
        .wait_state(&format!("{what}: back to the grid"), WAIT, |s| {
            s["share"]["layout"] == "grid" && s["share"]["presenter"].is_null()
        })
        .await;
}

/// Watches the frames `viewer` decodes from `sharer`'s camera: each check waits for more than
/// the last one saw, so the camera kept running through every step in between.
struct CameraWatch<'a> {
    viewer: &'a Browser,
    sharer: String,
    last: u64,
}

impl CameraWatch<'_> {
    async fn still_rising(&mut self, when: &str) {
        let last = self.last;
        let sharer = self.sharer.clone();
        let st = self
            .viewer
            .wait_stats(
                &format!("the sharer's camera frames rising ({when})"),
                WAIT,
                |st| count(&st[&sharer], &["video", "framesDecoded"]) > last,
            )
            .await;
        self.last = count(&st[&sharer], &["video", "framesDecoded"]);
    }
}

/// With `CONFAB_SCREENSHOT_DIR` set, saves what the page shows there (to look at).
async fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("CONFAB_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join(name))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_share_screens_one_at_a_time() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    let (ann, ben) = tokio::join!(Browser::start(), Browser::start());

    // Ann is alone and shares; Ben joins while she shares, so his new connection must carry
    // her screen (she answers his offer, then renegotiates to add it).
    let ann_id = join(&ann, &serve, "screens", "Ann").await;
    ann.click("#screen-toggle").await;
    let s = ann
        .wait_state("Ann sharing", WAIT, |s| {
            s["share"]["sharing"] == true
                && s["share"]["bannerShown"] == true
                && s["share"]["previewWidth"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert_eq!(s["share"]["buttonLabel"], "Stop sharing", "{s:#}");
    assert_eq!(
        s["share"]["layout"], "grid",
        "the sharer sees a preview, not her own screen large: {s:#}"
    );
    let ann_stream = s["share"]["streamId"].as_str().unwrap().to_owned();

    let ben_id = join(&ben, &serve, "screens", "Ben").await;
    ann.wait_state("Ann connected to Ben", WAIT, connected)
        .await;
    let s = ben
        .wait_state("Ben connected to Ann", WAIT, connected)
        .await;
    let s = if s["peers"][0]["screen"] == ann_stream.as_str() {
        s
    } else {
        ben.wait_state("Ann's announcement", WAIT, |s| {
            s["peers"][0]["screen"] == ann_stream.as_str()
        })
        .await
    };
    assert_eq!(s["peers"][0]["id"], ann_id.as_str());
    let stats = assert_sees_screen(&ben, &ann_id, "Ben joined while Ann shares").await;
    let mut camera = CameraWatch {
        viewer: &ben,
        sharer: ann_id.clone(),
        last: count(&stats[&ann_id], &["video", "framesDecoded"]),
    };
    ben.wait_state("the notice of Ann's share", WAIT, |s| {
        toasts_contain(s, "Ann is sharing their screen")
    })
    .await;
    let sent = ann
        .wait_stats("Ann encoding her screen for Ben", WAIT, |st| {
            count(&st[&ben_id], &["sent", "screen", "framesEncoded"]) > 0
        })
        .await;
    eprintln!(
        "figures: Ann sends her screen {}x{} ({}), her camera {}x{}",
        sent[&ben_id]["sent"]["screen"]["frameWidth"],
        sent[&ben_id]["sent"]["screen"]["frameHeight"],
        sent[&ben_id]["sent"]["screen"]["encoderImplementation"],
        sent[&ben_id]["sent"]["video"]["frameWidth"],
        sent[&ben_id]["sent"]["video"]["frameHeight"],
    );
    // The screen's sender keeps its resolution and is capped at 2.5 Mbit/s.
    let params = ann
        .eval(&format!(
            "const p = window.confab.screenSenderParameters({ben_id:?}); return p;"
        ))
        .await;
    assert_eq!(
        params["degradationPreference"], "maintain-resolution",
        "{params:#}"
    );
    assert_eq!(params["maxBitrate"], 2_500_000, "{params:#}");
    screenshot(&ben, "screen-share-viewer.png").await;
    screenshot(&ann, "screen-share-sharer.png").await;

    // Double-click: 1:1 pixels (the video at its own size, the view scrolls), and back.
    ben.double_click("#presenter-view").await;
    let s = ben
        .wait_state("1:1 after a double-click", WAIT, |s| {
            s["share"]["fit"] == "actual"
        })
        .await;
    let size = ben
        .eval(
            "const v = document.getElementById('presenter-video'); \
             return [v.clientWidth, v.videoWidth, v.clientHeight, v.videoHeight];",
        )
        .await;
    assert_eq!(size[0], size[1], "1:1 width: {size} {s:#}");
    assert_eq!(size[2], size[3], "1:1 height: {size} {s:#}");
    screenshot(&ben, "screen-share-actual-size.png").await;
    ben.double_click("#presenter-view").await;
    ben.wait_state("fit after another double-click", WAIT, |s| {
        s["share"]["fit"] == "fit"
    })
    .await;
    camera.still_rising("while Ann shares").await;

    // Ann stops with the banner's button: Ben is back to the grid, her camera goes on.
    ann.click("#share-stop").await;
    let s = ann
        .wait_state("Ann stopped", WAIT, |s| {
            s["share"]["sharing"] == false && s["share"]["bannerShown"] == false
        })
        .await;
    assert_eq!(s["share"]["buttonLabel"], "Share screen", "{s:#}");
    assert_grid(&ben, "Ann stopped").await;
    ben.wait_stats("Ann's screen gone from Ben's stats", WAIT, |st| {
        st[&ann_id]["screen"].is_null()
    })
    .await;
    camera.still_rising("after Ann stopped").await;

    // Ben shares mid-call (a renegotiation from his side): Ann sees it.
    ben.click("#screen-toggle").await;
    ben.wait_state("Ben sharing", WAIT, |s| s["share"]["sharing"] == true)
        .await;
    assert_sees_screen(&ann, &ben_id, "Ben shares mid-call").await;
    ann.wait_state("the notice of Ben's share", WAIT, |s| {
        toasts_contain(s, "Ben is sharing their screen")
    })
    .await;
    camera.still_rising("while Ben shares").await;

    // Ann shares while Ben shares: his share stops (with a notice), both show hers.
    ann.click("#screen-toggle").await;
    ann.wait_state("Ann sharing again", WAIT, |s| {
        s["share"]["sharing"] == true
            && s["share"]["layout"] == "grid"
            && s["share"]["presenter"].is_null()
    })
    .await;
    let s = ben
        .wait_state("Ben's share replaced by Ann's", WAIT, |s| {
            s["share"]["sharing"] == false
                && toasts_contain(s, "Ann is now sharing; your share stopped.")
        })
        .await;
    assert_eq!(s["share"]["buttonLabel"], "Share screen", "{s:#}");
    assert_sees_screen(&ben, &ann_id, "Ann replaced Ben's share").await;
    ann.wait_state("Ben's screen gone on Ann's page", WAIT, |s| {
        s["peers"][0]["screen"].is_null() && s["share"]["sharing"] == true
    })
    .await;
    camera.still_rising("after Ann replaced Ben's share").await;

    // Ann stops from the control bar: everyone is back to the grid.
    ann.click("#screen-toggle").await;
    assert_grid(&ben, "Ann stopped again").await;
    ann.wait_state("Ann not sharing", WAIT, |s| {
        s["share"]["sharing"] == false && s["share"]["layout"] == "grid"
    })
    .await;
    camera.still_rising("at the end").await;

    ann.close().await;
    ben.close().await;
}

/// A native peer (`confab join --share-screen synthetic`) and Chromium: the page shows the
/// native screen (told from the native camera by its `confab-screen-` stream), then Chromium
/// shares, which replaces the native share (one per room), and the native peer decodes
/// Chromium's screen as a screen: its report counts the screen's pictures and `--snapshot`
/// writes the last one as a PNG of the browser screen's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_peer_and_chromium_share_screens_with_each_other() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    let browser = Browser::start().await;
    let page_id = join(&browser, &serve, "mixed", "Chromium").await;
    let shots = std::env::temp_dir().join(format!("confab-share-shots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&shots);
    let native = tokio::spawn({
        let url = serve.ws_url.clone();
        let shots = shots.to_string_lossy().into_owned();
        async move {
            native_join(
                &url,
                "mixed",
                "native",
                &[
                    "--seconds",
                    "16",
                    "--share-screen",
                    "synthetic",
                    "--snapshot",
                    &shots,
                ],
            )
            .await
        }
    });
    let s = browser
        .wait_state("connected to the native peer", WAIT, connected)
        .await;
    let native_id = s["peers"][0]["id"].as_str().unwrap().to_owned();
    let stats = assert_sees_screen(&browser, &native_id, "the native peer shares").await;
    let screen = &stats[&native_id]["screen"];
    assert_eq!(
        screen["frameWidth"], 1920,
        "the native screen's size: {stats:#}"
    );
    assert_eq!(screen["frameHeight"], 1080, "{stats:#}");
    let s = browser.state().await;
    assert!(
        s["peers"][0]["screen"]
            .as_str()
            .is_some_and(|id| id.starts_with("confab-screen-")),
        "the native peer announced its screen stream: {s:#}"
    );
    screenshot(&browser, "screen-share-from-native.png").await;

    // Chromium shares: the native share gives way, and the native peer decodes Chromium's.
    browser.click("#screen-toggle").await;
    browser
        .wait_state("Chromium sharing, the native share gone", WAIT, |s| {
            s["share"]["sharing"] == true && s["peers"][0]["screen"].is_null()
        })
        .await;
    browser
        .wait_stats("Chromium encoding its screen", WAIT, |st| {
            count(&st[&native_id], &["sent", "screen", "framesEncoded"]) > 10
        })
        .await;
    let report = native.await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        report["screen_share"]["reason"]["kind"], "replaced",
        "the native share gave way: {report:#}"
    );
    assert_eq!(report["screen_share"]["reason"]["by"], page_id.as_str());
    let p = &report["participants"][0];
    assert_eq!(p["sharing"], true, "{report:#}");
    assert!(
        p["screen_frames_received"].as_u64().unwrap() > 5,
        "the native peer decoded Chromium's screen: {report:#}"
    );
    assert!(
        p["frames_received"].as_u64().unwrap() > 5,
        "and its camera: {report:#}"
    );
    let written: Vec<String> = report["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let screen_png = written
        .iter()
        .find(|f| f.ends_with("-screen.png"))
        .unwrap_or_else(|| panic!("a screen snapshot among {written:?}"));
    assert!(
        screen_png.contains("Chromium"),
        "named by participant: {screen_png}"
    );
    assert!(
        written.iter().any(|f| f.ends_with("-camera.png")),
        "{written:?}"
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(screen_png).unwrap(),
    ));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!(
        (Some(info.width), Some(info.height)),
        (
            p["screen_resolution"]
                .as_str()
                .and_then(|r| r.split('x').next())
                .and_then(|w| w.parse().ok()),
            p["screen_resolution"]
                .as_str()
                .and_then(|r| r.split('x').nth(1))
                .and_then(|h| h.parse().ok()),
        ),
        "the snapshot is the decoded screen: {report:#}"
    );
    let _ = std::fs::remove_dir_all(&shots);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_picker_shares_nothing_and_says_so() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    // The fake UI refuses every capture, as when the user cancels the screen picker: the page
    // joins without camera and microphone and gets NotAllowedError for the screen.
    let browser = Browser::start_with(&["--use-fake-ui-for-media-stream=deny"]).await;
    join(&browser, &serve, "cancelled", "Cy").await;
    browser.click("#screen-toggle").await;
    let s = browser
        .wait_state("the cancelled share explained", WAIT, |s| {
            s["share"]["lastError"].is_string()
        })
        .await;
    assert_eq!(
        s["share"]["lastError"],
        "Screen sharing was cancelled or is not allowed, so nothing is shared.",
        "{s:#}"
    );
    assert!(
        toasts_contain(
            &s,
            "Screen sharing was cancelled or is not allowed, so nothing is shared."
        ),
        "{s:#}"
    );
    assert_eq!(s["share"]["sharing"], false, "{s:#}");
    assert_eq!(s["share"]["bannerShown"], false, "{s:#}");
    assert_eq!(s["share"]["buttonLabel"], "Share screen", "{s:#}");
    let enabled = browser
        .eval("return !document.getElementById('screen-toggle').disabled")
        .await;
    assert_eq!(enabled, true, "the button works again");
    browser.close().await;
}
