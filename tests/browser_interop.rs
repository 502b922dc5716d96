//! Native <-> browser calls for real: the real `confab serve` serves the web client, a real headless
//! Chromium (fake camera and microphone) joins through it, and the real `confab join` binary
//! joins the same room. Asserted from both ends: media decoded each way (the browser's side from
//! `getStats()`: H.264 and Opus decoded), chat both ways, equal verification codes, a
//! three-party mesh where everyone sees everyone, and the page's error, reconnect and
//! ended-for-everyone handling.
//!
//! The tests share two CPU cores with Chromium's encoders, so they run one at a time.
//! Needs `chromium` and `chromium-driver` (`make deps` installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::time::{Duration, Instant};

use common::browser::{
    Browser, Serve, http_get, native_join, report_participant, wait_for_participants,
};
use confab_test_support::signaling::RawClient;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// One browser test at a time: each runs a Chromium and one or two native engines.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const JOIN: Duration = Duration::from_secs(20);

fn in_call_with(n: usize) -> impl Fn(&Value) -> bool {
    move |s: &Value| {
        s["screen"] == "call"
            && s["peers"].as_array().is_some_and(|ps| {
                ps.len() == n
                    && ps
                        .iter()
                        .all(|p| p["state"] == "connected" && p["code"].is_string())
            })
    }
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {v:#}"))
}

/// The browser decodes `id`'s H.264 video and Opus audio, and both counters keep rising.
async fn assert_browser_decodes(browser: &Browser, id: &str) -> Value {
    let first = browser
        .wait_stats("decoding video and audio", JOIN, |s| {
            s[id]["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
                && s[id]["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > 0
        })
        .await;
    let v0 = u64_at(&first[id], &["video", "framesDecoded"]);
    let a0 = u64_at(&first[id], &["audio", "totalSamplesReceived"]);
    let later = browser
        .wait_stats("video and audio counters rising", JOIN, |s| {
            s[id]["video"]["framesDecoded"].as_u64().unwrap_or(0) > v0
                && s[id]["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > a0
        })
        .await;
    let v1 = u64_at(&later[id], &["video", "framesDecoded"]);
    let a1 = u64_at(&later[id], &["audio", "totalSamplesReceived"]);
    assert!(v1 > v0, "framesDecoded stalled at {v0} -> {v1}: {later:#}");
    assert!(
        a1 > a0,
        "totalSamplesReceived stalled at {a0} -> {a1}: {later:#}"
    );
    let s = &later[id];
    assert_eq!(s["video"]["codec"], "video/H264", "{s:#}");
    assert!(
        s["video"]["fmtp"]
            .as_str()
            .is_some_and(|f| f.contains("packetization-mode=1")),
        "{s:#}"
    );
    assert_eq!(s["audio"]["codec"], "audio/opus", "{s:#}");
    // We asked for H.264 first, so what the browser sends the native peer is H.264 too.
    assert_eq!(s["sent"]["video"]["codec"], "video/H264", "{s:#}");
    later
}

/// With `CONFAB_SCREENSHOT_DIR` set, saves what the page shows there (to look at, or for docs).
async fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("CONFAB_SCREENSHOT_DIR") {
        browser
            .screenshot(&std::path::Path::new(&dir).join(name))
            .await;
    }
}

/// The native report shows healthy video and audio from the participant called `name`.
fn assert_native_decoded(report: &Value, name: &str) -> Value {
    let p = report_participant(report, name).clone();
    eprintln!(
        "figures: native decoding {name}: {} pictures, decode errors {}, skipped awaiting a \
         keyframe {}, dropped with the decoder behind {}, dropped for a slow consumer {}",
        p["frames_received"],
        p["decode_errors"],
        p["frames_skipped_awaiting_keyframe"],
        p["frames_dropped_decoder_behind"],
        p["frames_dropped_consumer_slow"]
    );
    assert_eq!(p["connected"], true, "{p:#}");
    assert!(u64_at(&p, &["frames_received"]) > 10, "{p:#}");
    // Real decoder failures only: pictures lost to a loaded machine are counted apart.
    assert_eq!(p["decode_errors"], 0, "{p:#}");
    assert_eq!(p["video_negotiated"], true, "{p:#}");
    assert!(p["resolution"].is_string(), "{p:#}");
    assert!(p["audio_kbps"].as_f64().unwrap() > 0.0, "{p:#}");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_and_native_call_each_other() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    let browser = Browser::start().await;
    let t0 = Instant::now();

    // The browser joins first (from the room link); the native peer is the newcomer and offers.
    browser
        .goto(&format!(
            "{}/r/interop?name=Chromium&fps=15&autojoin=1",
            serve.http_url
        ))
        .await;
    browser
        .wait_state("joining", JOIN, |s| {
            s["screen"] == "call" && s["id"].is_string()
        })
        .await;
    let native = tokio::spawn({
        let url = serve.ws_url.clone();
        async move {
            native_join(
                &url,
                "interop",
                "native",
                &[
                    "--seconds",
                    "8",
                    "--chat",
                    "hello from native",
                    "--wall-clock-markers",
                ],
            )
            .await
        }
    });
    let s = browser
        .wait_state("connecting to the native peer", JOIN, in_call_with(1))
        .await;
    let native_id = s["peers"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s["peers"][0]["name"], "native");

    // Chat, native -> browser: shown in the page; then browser -> native, typed like a user.
    let s = browser
        .wait_state("the native chat message", JOIN, |s| {
            s["chat"]
                .as_array()
                .is_some_and(|c| c.iter().any(|m| m["text"] == "hello from native"))
        })
        .await;
    assert_eq!(
        s["peers"][0]["mic"], true,
        "the native peer announced its media state"
    );
    browser.click("#chat-toggle").await;
    browser
        .type_into("#chat-input", "hello from the browser")
        .await;
    browser.click("#chat-send").await;
    assert!(
        browser
            .text("#chat-log")
            .await
            .contains("hello from native"),
        "the chat panel shows the native message"
    );

    let stats = assert_browser_decodes(&browser, &native_id).await;
    screenshot(&browser, "browser-call.png").await;
    // Switching the camera mid-call (to the test pattern, whose markers the native side reads)
    // replaces the track without renegotiating.
    browser.click("#devices-toggle").await;
    browser.select("#camera-select", "pattern").await;
    let browser_code = browser
        .text(&format!("[data-code-for=\"{native_id}\"] .code"))
        .await;

    let page = browser.state().await;
    let report = native.await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    let p = assert_native_decoded(&report, "Chromium");
    assert!(
        u64_at(&report, &["audio_frames_audible"]) > 0,
        "the browser's fake microphone beeps were heard: {report:#}"
    );
    assert_eq!(
        p["chat_received"],
        json!(["hello from the browser"]),
        "{p:#}"
    );
    assert!(
        p["latency_ms"]["p50"].is_number(),
        "the native side saw the test pattern after the camera switch: {p:#}"
    );
    assert_eq!(p["remote_mic"], true, "{p:#}");
    assert_eq!(p["remote_camera"], true, "{p:#}");
    assert_eq!(
        p["verification_code"].as_str(),
        Some(browser_code.as_str()),
        "both ends show the same security code"
    );
    eprintln!(
        "figures: native first frame from the browser {} ms after joining; browser first frame \
         from the native peer {} ms after it entered the room; browser jitter buffer {:.0} ms/frame; \
         test {:.1} s",
        p["first_frame_ms"],
        page["peers"][0]["firstFrameMs"],
        stats[&native_id]["video"]["jitterBufferDelay"]
            .as_f64()
            .unwrap_or(0.0)
            * 1000.0
            / stats[&native_id]["video"]["jitterBufferEmittedCount"]
                .as_f64()
                .unwrap_or(1.0),
        t0.elapsed().as_secs_f64()
    );

    // The native peer left: the page drops its tile.
    browser
        .wait_state("the native peer leaving", JOIN, |s| {
            s["peers"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_party_room_with_a_browser_and_two_native_peers() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    let browser = Browser::start().await;
    let native = |name: &'static str, seconds: &'static str| {
        let url = serve.ws_url.clone();
        tokio::spawn(async move {
            native_join(
                &url,
                "trio",
                name,
                &["--seconds", seconds, "--resolution", "320x240"],
            )
            .await
        })
    };

    // Ada is there first, so the browser is the newcomer and makes the offer this time.
    let ada = native("ada", "14");
    wait_for_participants(&serve.http_url, 1, JOIN).await;
    browser
        .goto(&format!(
            "{}/r/trio?name=Chromium&fps=15&autojoin=1",
            serve.http_url
        ))
        .await;
    browser
        .wait_state("connecting to ada", JOIN, in_call_with(1))
        .await;
    // Bob joins last and offers to both.
    let bob = native("bob", "7");
    let s = browser
        .wait_state("connecting to ada and bob", JOIN, in_call_with(2))
        .await;
    for p in s["peers"].as_array().unwrap() {
        assert_browser_decodes(&browser, p["id"].as_str().unwrap()).await;
    }
    let names: Vec<&str> = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ada") && names.contains(&"bob"), "{s:#}");
    screenshot(&browser, "browser-three-party.png").await;

    let bob = bob.await.unwrap();
    let ada = ada.await.unwrap();
    for (report, others) in [(&ada, ["Chromium", "bob"]), (&bob, ["Chromium", "ada"])] {
        assert_eq!(report["ok"], true, "{report:#}");
        assert_eq!(
            report["participants"].as_array().unwrap().len(),
            2,
            "{report:#}"
        );
        for other in others {
            assert_native_decoded(report, other);
        }
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_explains_refusals_and_rides_out_a_server_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &["--max-room-size", "2"]);
    // A room with a password, and a full room, held by plain protocol clients.
    let mut holders = Vec::new();
    for (room, name, password) in [
        ("locked", "holder", Some("secret")),
        ("full", "one", None),
        ("full", "two", None),
    ] {
        let mut c = RawClient::connect(&serve.ws_url).await;
        let mut join = json!({"v": 1, "type": "join", "room": room, "name": name});
        if let Some(p) = password {
            join["password"] = json!(p);
        }
        c.send_json(join).await;
        c.next_message().await.expect("welcome");
        holders.push(c);
    }
    // Every page and file of the client is served, typed, and kept to this origin.
    for path in ["/", "/r/some%20room"] {
        let page = http_get(&serve.http_url, path).await;
        assert!(page.starts_with("HTTP/1.0 200"), "{path}: {page:.200}");
        assert!(page.contains("content-type: text/html"), "{page:.400}");
        assert!(
            page.contains("content-security-policy: default-src 'self'"),
            "{page:.600}"
        );
    }
    for name in signaling_server::asset_names() {
        let file = http_get(&serve.http_url, &format!("/web/{name}")).await;
        assert!(file.starts_with("HTTP/1.0 200"), "{name}: {file:.200}");
    }
    let missing = http_get(&serve.http_url, "/web/missing.js").await;
    assert!(missing.starts_with("HTTP/1.0 404"), "{missing:.200}");
    let browser = Browser::start().await;

    // The join form at `/`, filled in like a person would.
    browser.goto(&format!("{}/", serve.http_url)).await;
    browser.type_into("#name", "Dana").await;
    browser.type_into("#room", "locked").await;
    browser.type_into("#password", "guess").await;
    browser.click("#join-button").await;
    let s = browser
        .wait_state("refusing a wrong password", JOIN, |s| {
            s["error"].is_string()
        })
        .await;
    assert!(
        s["error"].as_str().unwrap().contains("Wrong password"),
        "{s:#}"
    );
    assert_eq!(s["screen"], "lobby");
    assert!(browser.text("#join-error").await.contains("Wrong password"));
    screenshot(&browser, "browser-wrong-password.png").await;

    browser.type_into("#room", "full").await;
    browser.type_into("#password", "").await;
    browser.click("#join-button").await;
    let s = browser
        .wait_state("refusing a full room", JOIN, |s| {
            s["error"].as_str().is_some_and(|e| e.contains("full"))
        })
        .await;
    assert_eq!(s["error"], "This room is full.", "{s:#}");

    browser.type_into("#room", "locked").await;
    browser.type_into("#password", "secret").await;
    browser.click("#join-button").await;
    let s = browser
        .wait_state("joining with the right password", JOIN, |s| {
            s["screen"] == "call" && s["peers"].as_array().is_some_and(|p| p.len() == 1)
        })
        .await;
    assert_eq!(s["peers"][0]["name"], "holder");
    assert_eq!(s["error"], Value::Null);

    // The page's verification code is the engine's, with crypto.subtle and with the plain-JS
    // SHA-256 used on pages that are not a secure context.
    let a = "sha-256 CA:B2:11:00:FF:EE:DD:CC:BB:AA:99:88:77:66:55:44:33:22:11:00:12:34:56:78:9A:BC:DE:F0:01:02:03:04";
    let b = "sha-256 01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:20";
    let expected = confab_engine::verification::verification_code(a, b);
    for fallback in [false, true] {
        let code = browser
            .client
            .execute(
                "return window.confab.verificationCode(arguments[0], arguments[1], {forceFallback: arguments[2]})",
                vec![json!(b), json!(a), json!(fallback)],
            )
            .await
            .unwrap();
        assert_eq!(code, json!(expected), "fallback {fallback}");
    }

    // The server dies: the page says it is reconnecting and keeps the call screen; when a server
    // is back on the same port, the page rejoins the room by itself.
    let port = serve.port;
    drop(holders);
    serve.kill();
    let s = browser
        .wait_state("noticing the server is gone", JOIN, |s| {
            s["banner"]
                .as_str()
                .is_some_and(|b| b.contains("Reconnecting"))
        })
        .await;
    assert_eq!(s["screen"], "call");
    screenshot(&browser, "browser-reconnecting.png").await;
    let id = s["id"].clone();
    let serve = Serve::start(port, &[]);
    let s = browser
        .wait_state("rejoining the restarted server", JOIN, |s| {
            s["banner"].is_null()
        })
        .await;
    assert_eq!(s["screen"], "call");
    assert_eq!(s["id"], id, "the page keeps its participant id");
    wait_for_participants(&serve.http_url, 1, JOIN).await;
    browser.close().await;
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_markers_survive_both_ways_and_measure_latency() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let serve = Serve::start(0, &[]);
    let browser = Browser::start().await;
    // The page's test-pattern camera writes Confab frame markers with wall-clock capture times.
    browser
        .goto(&format!(
            "{}/r/clock?name=Pattern&camera=pattern&fps=15&autojoin=1",
            serve.http_url
        ))
        .await;
    browser
        .wait_state("joining", JOIN, |s| s["screen"] == "call")
        .await;
    let native = tokio::spawn({
        let url = serve.ws_url.clone();
        async move {
            native_join(
                &url,
                "clock",
                "native",
                &[
                    "--seconds",
                    "7",
                    "--wall-clock-markers",
                    "--resolution",
                    "320x240",
                ],
            )
            .await
        }
    });
    let s = browser
        .wait_state("connecting", JOIN, in_call_with(1))
        .await;
    let id = s["peers"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        browser
            .client
            .execute(
                "return window.confab.probeMarkers(arguments[0])",
                vec![json!(id)]
            )
            .await
            .unwrap(),
        json!(true)
    );
    // The page has read a second's worth of the native pattern's markers (30 fps).
    let seen = browser
        .wait_eval(
            "the page reads the native pattern's markers",
            JOIN,
            &format!("return window.confab.markers({})", json!(id)),
            |m| m["frames"].as_u64().is_some_and(|n| n >= 30),
        )
        .await;
    let report = native.await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");

    // Browser -> native: every picture carried an intact marker, in order.
    let p = assert_native_decoded(&report, "Pattern");
    assert_eq!(p["corrupt_frames"], 0, "{p:#}");
    assert_eq!(p["out_of_order_frames"], 0, "{p:#}");
    let browser_to_native = p["latency_ms"]["p50"]
        .as_f64()
        .unwrap_or_else(|| panic!("no marker latency: {p:#}"));

    // Native -> browser: the page read the native pattern's markers off the screen, in order;
    // with the native media clock's offset they become capture→render latencies.
    assert!(u64_at(&seen, &["frames"]) > 10, "{seen:#}");
    assert_eq!(seen["outOfOrder"], 0, "{seen:#}");
    let offset = report["media_clock_offset_us"].as_i64().unwrap();
    let mut latencies: Vec<f64> = seen["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let d = d.as_u64().unwrap() as u32;
            // Truncation intended: marker times are the low 32 bits.
            f64::from(d.wrapping_sub(offset as u32) as i32) / 1000.0
        })
        .collect();
    assert!(
        latencies.iter().all(|ms| (0.0..60_000.0).contains(ms)),
        "marker times do not map onto the wall clock: {latencies:?}"
    );
    eprintln!(
        "figures: capture->decoded p50 browser->native {browser_to_native:.1} ms (p95 {:.1}); \
         capture->render p50 native->browser {:.1} ms over {} frames (frame callbacks: {})",
        p["latency_ms"]["p95"].as_f64().unwrap_or(0.0),
        median(&mut latencies),
        latencies.len(),
        seen["presented"]
    );
    browser.close().await;
}

/// The host ends the call for everyone (`shutdown` with `"ended": true`): the page shows the
/// ended screen with the reason instead of "Reconnecting…" to a server that is not coming back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_ends_the_call_when_the_host_ends_it_for_everyone() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = signaling_server::SignalingServer::start(signaling_server::ServerConfig::new(
        ([127, 0, 0, 1], 0).into(),
    ))
    .await
    .unwrap();
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "{}/r/over?name=Chromium&autojoin=1",
            server.http_url()
        ))
        .await;
    browser
        .wait_state("joining", JOIN, |s| {
            s["screen"] == "call" && s["id"].is_string()
        })
        .await;
    server.end_calls(Duration::from_secs(2)).await;
    let s = browser
        .wait_state("the ended screen", JOIN, |s| s["screen"] == "ended")
        .await;
    assert!(
        s["endedReason"]
            .as_str()
            .is_some_and(|r| r.contains("ended the call")),
        "{s:#}"
    );
    assert!(s["banner"].is_null(), "no reconnecting banner: {s:#}");
    browser.close().await;
}
