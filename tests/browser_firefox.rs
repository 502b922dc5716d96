//! Native <-> Firefox calls for real: the real `confab serve` serves the web client, a real
//! headless Firefox (Debian's `firefox-esr`, fake camera and microphone, through geckodriver)
//! joins through it, and the real `confab join` binary joins the same room, once with each side
//! making the offer.
//!
//! Firefox without its OpenH264 plugin (Debian ships none; the tests keep Firefox from
//! downloading it) has no video codec in common with the engine, so the call carries audio both
//! ways and chat both ways, and the video sections are rejected cleanly: no errors on either
//! side, the native report says `video_negotiated: false`, the page decodes no video. Both ends
//! show the same verification code, and the DTLS handshake between Firefox (which can offer DTLS
//! 1.3) and webrtc-rs (DTLS 1.2) succeeds in both roles: Firefox as DTLS client when it answers,
//! as server when it offers.
//!
//! Needs `firefox-esr` and geckodriver (`cargo install geckodriver --locked`); skips, saying why,
//! without them. Firefox gathers ICE candidates only on the interface of the default route, never
//! on loopback, so the tests call on that address and skip on a machine without an IPv4 default
//! route. Offline CI can give them one in a network namespace of their own, which also keeps
//! Firefox off any real network:
//!
//! ```sh
//! unshare -rn sh -c 'ip link set lo up && ip link add v0 type veth peer name v1 &&
//!   ip addr add 10.9.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up &&
//!   ip route add default via 10.9.0.254 && cargo test --test browser_firefox'
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::time::{Duration, Instant};

use common::browser::{Serve, native_join, report_participant, wait_for_participants};
use common::firefox;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// One browser test at a time: each runs a Firefox and a native engine on two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const JOIN: Duration = Duration::from_secs(20);

/// `u64` at `path` in `v`, or 0.
fn u64_at(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// A call between Firefox and `confab join`; `firefox_first`: Firefox is in the room first, so
/// the native peer offers and Firefox answers (else Firefox offers).
async fn call(room: &str, firefox_first: bool) {
    let setup = match firefox::available() {
        Ok(setup) => setup,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let serve = Serve::start(0, &[]);
    let browser = firefox::start(&setup).await;
    let bind = setup.ice_address.to_string();
    let native = |bind: String| {
        let url = serve.ws_url.clone();
        let room = room.to_owned();
        tokio::spawn(async move {
            native_join(
                &url,
                &room,
                "native",
                &[
                    "--seconds",
                    "8",
                    "--chat",
                    "hello from native",
                    "--bind",
                    &bind,
                ],
            )
            .await
        })
    };
    let page = format!("{}/r/{room}?name=Firefox&autojoin=1", serve.http_url);
    let (native, native_started) = if firefox_first {
        browser.goto(&page).await;
        browser
            .wait_state("joining", JOIN, |s| {
                s["screen"] == "call" && s["id"].is_string()
            })
            .await;
        (native(bind), Instant::now())
    } else {
        let native = native(bind);
        let started = Instant::now();
        wait_for_participants(&serve.http_url, 1, JOIN).await;
        browser.goto(&page).await;
        (native, started)
    };

    let s = browser
        .wait_state("connecting to the native peer", JOIN, |s| {
            s["screen"] == "call"
                && s["peers"].as_array().is_some_and(|ps| {
                    ps.len() == 1 && ps[0]["state"] == "connected" && ps[0]["code"].is_string()
                })
        })
        .await;
    let id = s["peers"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s["peers"][0]["name"], "native", "{s:#}");

    // Audio from the native peer plays in Firefox, and keeps coming; no video either way.
    let first = browser
        .wait_stats("receiving audio", JOIN, |s| {
            u64_at(&s[&id], &["audio", "totalSamplesReceived"]) > 0
        })
        .await;
    let first_audio = native_started.elapsed();

    // Chat, native -> Firefox: shown in the page; then Firefox -> native, typed like a user.
    let s = browser
        .wait_state("the native chat message", JOIN, |s| {
            s["chat"]
                .as_array()
                .is_some_and(|c| c.iter().any(|m| m["text"] == "hello from native"))
        })
        .await;
    assert_eq!(s["peers"][0]["lastError"], Value::Null, "{s:#}");
    browser.click("#chat-toggle").await;
    browser.type_into("#chat-input", "hello from Firefox").await;
    browser.click("#chat-send").await;

    let a0 = u64_at(&first[&id], &["audio", "totalSamplesReceived"]);
    let later = browser
        .wait_stats("received audio rising", JOIN, |s| {
            s[&id]["audio"]["totalSamplesReceived"]
                .as_u64()
                .unwrap_or(0)
                > a0
        })
        .await;
    let a1 = u64_at(&later[&id], &["audio", "totalSamplesReceived"]);
    assert!(
        a1 > a0,
        "totalSamplesReceived stalled at {a0} -> {a1}: {later:#}"
    );
    let stats = &later[&id];
    assert_eq!(stats["audio"]["codec"], "audio/opus", "{stats:#}");
    assert_eq!(stats["video"], Value::Null, "no inbound video: {stats:#}");
    assert_eq!(
        stats["sent"]["video"],
        Value::Null,
        "no outbound video: {stats:#}"
    );
    assert!(
        u64_at(stats, &["sent", "audio", "bytesSent"]) > 0,
        "Firefox sends audio: {stats:#}"
    );

    // The video section is rejected (port 0) in the negotiated descriptions, audio and the chat
    // channel are not.
    let sdp = browser
        .client
        .execute(
            "return window.confab.descriptions(arguments[0])",
            vec![json!(id)],
        )
        .await
        .unwrap();
    let answer = if firefox_first {
        sdp["local"].as_str()
    } else {
        sdp["remote"].as_str()
    }
    .unwrap();
    assert!(answer.contains("\r\nm=video 0 "), "{answer}");
    assert!(!answer.contains("\r\nm=audio 0 "), "{answer}");
    assert!(!answer.contains("\r\nm=application 0 "), "{answer}");

    // The DTLS handshake: its version and ciphers, from Firefox's transport stats.
    let raw = browser
        .client
        .execute(
            "return window.confab.rawStats(arguments[0])",
            vec![json!(id)],
        )
        .await
        .unwrap();
    let transport = raw
        .as_array()
        .and_then(|r| r.iter().find(|s| s["type"] == "transport"))
        .unwrap_or_else(|| panic!("no transport stats: {raw:#}"))
        .clone();
    assert_eq!(transport["dtlsState"], "connected", "{transport:#}");
    let code = browser
        .text(&format!("[data-code-for=\"{id}\"] .code"))
        .await;
    let note = browser
        .eval("return document.getElementById('media-note').textContent")
        .await;
    assert!(
        note.as_str().is_some_and(|n| n.contains("no H.264")),
        "the page tells the user why there is no video: {note}"
    );

    let report = native.await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["chat_sent"], "hello from native", "{report:#}");
    let p = report_participant(&report, "Firefox");
    assert_eq!(p["connected"], true, "{p:#}");
    assert_eq!(p["video_negotiated"], false, "{p:#}");
    assert_eq!(p["frames_received"], 0, "{p:#}");
    assert_eq!(p["decode_errors"], 0, "{p:#}");
    assert!(p["audio_kbps"].as_f64().is_some_and(|k| k > 0.0), "{p:#}");
    assert!(
        u64_at(&report, &["audio_frames_audible"]) > 0,
        "Firefox's fake microphone tone was heard: {report:#}"
    );
    assert_eq!(p["chat_received"], json!(["hello from Firefox"]), "{p:#}");
    assert_eq!(p["remote_mic"], true, "{p:#}");
    assert_eq!(
        p["verification_code"].as_str(),
        Some(code.as_str()),
        "both ends show the same security code"
    );
    eprintln!(
        "figures: Firefox {} ({}): native connected {} ms after joining, Firefox's first audio \
         {} ms after the native peer started; audio to native {:.1} kbit/s, audible frames {}; \
         DTLS {} role {} version {} cipher {} SRTP {}; candidate {} rtt {} ms; test {:.1} s",
        if firefox_first { "answers" } else { "offers" },
        setup.ice_address,
        p["connected_ms"],
        first_audio.as_millis(),
        p["audio_kbps"].as_f64().unwrap_or(0.0),
        report["audio_frames_audible"],
        transport["dtlsState"],
        transport["dtlsRole"],
        transport["tlsVersion"],
        transport["dtlsCipher"],
        transport["srtpCipher"],
        p["candidate_type"],
        p["rtt_ms"],
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
async fn firefox_answers_the_native_offer_with_audio_and_chat_and_no_video() {
    call("firefox-answers", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_offers_and_the_native_answer_rejects_its_video() {
    call("firefox-offers", false).await;
}
