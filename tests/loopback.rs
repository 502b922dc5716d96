//! `confab loopback` end to end: the report of a short call between two in-process engines over
//! real UDP must be healthy in every field, on synthetic media and on file media. The assertions
//! are about behaviour, never wall-clock speed (speed lives in the report itself).
//!
//! File fixtures ([`confab_engine::testing::fixtures`]) are written into a temporary directory.
//! The `--network` runs go through the real `confab` binary, as a user types them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::process::{Command, Output};

use confab::loopback::{LoopbackOptions, run};
use confab_engine::testing::fixtures::{temp_dir, write_clip, write_tone};

/// One call at a time: each runs two engines (debug builds) on this machine's two cores, and a
/// rate-cap or loss figure measured while another call takes the CPU is that call's, not the
/// network's (seen: a 400 kbit/s cap's estimate drifting to 580 while a second call ran).
static ONE_CALL_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the other calls of this file to finish (a failed one does not block the rest).
fn one_call_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CALL_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A short, small loopback call; its report must be healthy in every field the issue names.
#[test]
fn loopback_call_is_healthy_both_ways() {
    let _one = one_call_at_a_time();
    let report = run(&LoopbackOptions {
        seconds: 4.0,
        width: 320,
        height: 240,
        fps: 15,
        bitrate_kbps: 400,
        video_file: None,
        audio_file: None,
        ..LoopbackOptions::default()
    })
    .expect("loopback runs");
    let json = serde_json::to_value(&report).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert!(report.ok, "unhealthy call: {:?}", report.failures);
    assert_eq!(json["failure"], serde_json::Value::Null);
    for key in ["connected", "first_video_frame", "first_audio"] {
        assert!(json["setup_ms"][key].as_f64().is_some(), "setup_ms.{key}");
    }
    for d in [&report.a_to_b, &report.b_to_a] {
        assert!(
            d.frames_received > 10,
            "video decoded: {}",
            d.frames_received
        );
        assert!(d.frames_sent >= d.frames_received);
        assert_eq!(d.resolution.as_deref(), Some("320x240"));
        assert_eq!(d.corrupt_frames, 0);
        assert_eq!(d.out_of_order_frames, 0);
        assert_eq!(d.freezes, 0);
        assert!(d.latency_ms.is_some(), "latency measured from the markers");
        assert!(d.audio_latency_ms.is_some(), "beeps heard and paired");
        assert!(d.video_kbps > 0.0 && d.audio_kbps > 0.0);
    }
    for key in ["a_to_b", "b_to_a"] {
        for field in [
            "frames_sent",
            "frames_received",
            "fps",
            "resolution",
            "video_kbps",
            "audio_kbps",
            "latency_ms",
            "audio_latency_ms",
            "freezes",
            "longest_freeze_ms",
            "packets_lost",
            "nacks",
            "plis",
            "rtt_ms",
            "encode_ms_per_frame",
            "decode_ms_per_frame",
        ] {
            assert!(
                json[key].get(field).is_some(),
                "{key}.{field} in the report"
            );
        }
        for p in ["p50", "p95", "p99", "max"] {
            assert!(json[key]["latency_ms"][p].as_f64().is_some());
        }
    }
    assert!(
        json["process"]["cpu_percent_of_one_core"]
            .as_f64()
            .is_some()
    );
    assert!(json["process"]["peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(report.verification_codes.len(), 2);
    assert_eq!(report.verification_codes[0], report.verification_codes[1]);
    // A clean network: no simulator, and the windowed figures of a healthy call.
    assert_eq!(json["network"], serde_json::Value::Null);
    assert_eq!(json["simulator"], serde_json::Value::Null);
    for d in [&report.a_to_b, &report.b_to_a] {
        assert!(d.freeze_ratio < 0.5, "{}", d.freeze_ratio);
        assert!(d.beeps_sent > 0);
        assert!(d.recovery_ms.is_none());
        assert!(!d.bandwidth_estimate_kbps_per_second.is_empty());
    }
}

#[test]
fn loopback_runs_on_file_media() {
    let _one = one_call_at_a_time();
    let dir = temp_dir("files");
    let clip = dir.join("clip.y4m");
    let tone = dir.join("tone.wav");
    write_clip(&clip, 320, 240, 30);
    write_tone(&tone);
    let report = run(&LoopbackOptions {
        seconds: 3.0,
        width: 320,
        height: 240,
        fps: 15,
        bitrate_kbps: 400,
        video_file: Some(clip),
        audio_file: Some(tone),
        ..LoopbackOptions::default()
    })
    .expect("loopback runs");
    assert!(report.ok, "{:?}", report.failures);
    for d in [&report.a_to_b, &report.b_to_a] {
        assert!(d.frames_received > 10, "the looping clip arrived");
        assert_eq!(d.resolution.as_deref(), Some("320x240"));
        assert!(d.audio_kbps > 0.0, "the WAV arrived");
        // File media carries no timing markers: no latency is claimed.
        assert!(d.latency_ms.is_none());
        assert!(d.audio_latency_ms.is_none());
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn confab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("confab runs")
}

/// `confab loopback --network …`: a lossy network with an outage. The report names the
/// network, its seed and what the simulator did; the call survives it with intact pictures,
/// and the windowed figures and the recovery after the outage are there and sane.
///
/// One known failure is not this test's subject and gets one more try with another seed: a lost
/// DTLS handshake packet can leave webrtc-rs 0.21.1's handshake stuck until it gives up, so the
/// call never connects (about 1 run in 6 here; upstream webrtc-rs/rtc#243, see ARCHITECTURE.md,
/// "Loss recovery"). Every other failure, and a second call that does not connect, fails.
#[test]
fn loopback_through_a_simulated_network_reports_it() {
    let _one = one_call_at_a_time();
    let run = |seed: &str| {
        let out = confab(&[
            "loopback",
            "--network",
            "loss=5%,delay=10ms,outage=500ms@3s",
            "--seed",
            seed,
            "--seconds",
            "6",
            "--resolution",
            "320x180",
            "--fps",
            "15",
            "--bitrate-kbps",
            "400",
            "--json",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out, json)
    };
    let (mut out, mut json) = run("7");
    let mut seed = 7;
    if json["setup_ms"]["connected"].is_null() {
        eprintln!("seed 7: the call never connected (DTLS handshake lost); trying seed 8");
        (out, json) = run("8");
        seed = 8;
    }
    eprintln!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert!(out.status.success(), "unhealthy: {}", json["failures"]);
    assert_eq!(json["ok"], true);
    let net = &json["network"];
    assert_eq!(net["spec"], "loss=5%,delay=10ms,outage=500ms@3s");
    assert_eq!(net["seed"], seed);
    assert_eq!(net["a_to_b"]["loss_percent"], 5.0);
    assert_eq!(net["b_to_a"]["delay_ms"], 10.0);
    assert_eq!(net["outages"][0]["duration_ms"], 500.0);
    for key in ["a_to_b", "b_to_a"] {
        let sim = &json["simulator"][key];
        assert!(
            sim["forwarded_packets"].as_u64().unwrap() > 100,
            "{key}: {sim}"
        );
        assert!(sim["dropped_loss"].as_u64().unwrap() > 0, "{key}: {sim}");
        assert!(sim["dropped_outage"].as_u64().unwrap() > 0, "{key}: {sim}");
        let d = &json[key];
        assert!(d["frames_received"].as_u64().unwrap() > 0, "{key}");
        assert_eq!(d["corrupt_frames"], 0, "{key}");
        let ratio = d["freeze_ratio"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ratio), "{key}: {ratio}");
        assert!(
            d["frozen_ms_total"].as_f64().unwrap() >= 400.0,
            "{key}: the 500 ms outage froze the picture"
        );
        assert!(d["fps_p10"].as_f64().is_some(), "{key}");
        for field in [
            "resolution_changes",
            "retransmitted_packets",
            "fec_recovered",
            "beeps_heard",
        ] {
            assert!(d[field].as_u64().is_some(), "{key}.{field}");
        }
        for field in ["audio_concealed_ms", "audio_concealed_ratio"] {
            assert!(d[field].as_f64().is_some(), "{key}.{field}");
        }
        assert!(
            d["beeps_sent"].as_u64().unwrap() >= 10,
            "{key}: 6 s of beeps"
        );
        let estimates = d["bandwidth_estimate_kbps_per_second"].as_array().unwrap();
        assert_eq!(estimates.len(), 6, "{key}: one a second: {estimates:?}");
        let recovery = &d["recovery_ms"];
        assert!(
            recovery["video"].as_f64().is_some(),
            "{key}: video came back"
        );
        assert!(
            recovery["audio"].as_f64().is_some(),
            "{key}: audio came back"
        );
    }
}

/// A rate cap far below the start bitrate (`rate=400kbit` under a 1.2 Mbit/s start): the call
/// fits the cap instead of collapsing into retransmissions and keyframes. The estimate comes
/// down to the cap and stays there (or within the estimator's headroom over what is sent, when
/// the sender does not use it all), retransmissions stay a small share of what crosses the
/// link, and pictures keep being decoded, intact and in order.
#[test]
fn a_rate_cap_below_the_start_bitrate_is_fitted() {
    let _one = one_call_at_a_time();
    let out = confab(&[
        "loopback",
        "--network",
        "rate=400kbit",
        "--seed",
        "3",
        "--seconds",
        "12",
        "--resolution",
        "640x360",
        "--bitrate-kbps",
        "1200",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert!(out.status.success(), "unhealthy: {}", json["failures"]);
    for key in ["a_to_b", "b_to_a"] {
        let d = &json[key];
        let estimates: Vec<f64> = d["bandwidth_estimate_kbps_per_second"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_f64().unwrap())
            .collect();
        // Fitting the cap: within 15 % of it, or, when the sender does not use its estimate (a
        // debug build's encoder short of CPU), within the headroom the estimator allows over
        // what is sent (1.5 x + 10 kbit/s, peer/bwe), what is sent counted with 15 % for
        // packet headers. Nothing sent past the cap builds a queue here.
        let sent = d["video_kbps"].as_f64().unwrap() + d["audio_kbps"].as_f64().unwrap();
        let allowed = 460.0_f64.max(1.5 * sent * 1.15 + 10.0);
        assert!(
            estimates[estimates.len() - 4..]
                .iter()
                .all(|e| *e <= allowed),
            "{key}: the estimate does not fit the 400 kbit/s cap (allowed {allowed:.0} with \
             {sent:.0} kbit/s sent): {estimates:?}"
        );
        let forwarded = json["simulator"][key]["forwarded_packets"]
            .as_u64()
            .unwrap();
        let resent = d["retransmitted_packets"].as_u64().unwrap();
        assert!(
            resent * 10 <= forwarded,
            "{key}: {resent} retransmissions of {forwarded} packets"
        );
        let sent = d["frames_sent"].as_u64().unwrap();
        let decoded = d["frames_received"].as_u64().unwrap();
        assert!(decoded * 3 >= sent, "{key}: {decoded} of {sent} pictures");
        assert_eq!(d["corrupt_frames"], 0, "{key}");
        assert_eq!(d["out_of_order_frames"], 0, "{key}");
    }
}

/// A bad `--network` is a usage error (exit code 2) that says what is wrong.
#[test]
fn a_bad_network_spec_is_refused_with_the_reason() {
    for (spec, says) in [
        ("los=5%", "unknown network setting `los`"),
        ("loss=150%", "0 % to 100 %"),
        ("rate=800", "unit needed"),
        ("satellite", "profiles: wifi, lossy, 3g, congested"),
    ] {
        let out = confab(&["loopback", "--network", spec, "--seconds", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(says), "{spec}: {err}");
    }
    let help = confab(&["loopback", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "--network",
        "wifi",
        "lossy",
        "3g",
        "congested",
        "outage=3s@8s",
        "--seed",
    ] {
        assert!(text.contains(word), "--help names {word}");
    }
}

/// `confab loopback --screen-share`, as a user types it: alice also shares the synthetic
/// 1920x1080 screen; the report gives its figures in her direction (pictures decoded at full
/// size, intact and in order, a latency from its markers, a bitrate) and none in bob's, and the
/// camera still arrives both ways.
#[test]
fn loopback_with_a_screen_share_reports_the_screen() {
    let _one = one_call_at_a_time();
    let out = confab(&[
        "loopback",
        "--screen-share",
        "--seconds",
        "5",
        "--resolution",
        "320x240",
        "--fps",
        "15",
        "--bitrate-kbps",
        "3000",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("a JSON report ({e}): {stdout}"));
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&report["a_to_b"]["screen"]).unwrap()
    );
    assert_eq!(report["ok"], true, "{report:#}");
    let screen = &report["a_to_b"]["screen"];
    assert_eq!(screen["resolution"], "1920x1080", "{screen:#}");
    assert!(
        screen["frames_received"].as_u64().unwrap() > 10,
        "{screen:#}"
    );
    assert!(screen["fps"].as_f64().unwrap() > 0.0, "{screen:#}");
    assert!(screen["kbps"].as_f64().unwrap() > 0.0, "{screen:#}");
    assert!(screen["latency_ms"]["p50"].as_f64().is_some(), "{screen:#}");
    assert_eq!(screen["corrupt_frames"], 0, "{screen:#}");
    assert_eq!(screen["out_of_order_frames"], 0, "{screen:#}");
    assert!(report["b_to_a"]["screen"].is_null(), "bob shares nothing");
    for d in ["a_to_b", "b_to_a"] {
        assert_eq!(
            report[d]["resolution"], "320x240",
            "the cameras: {report:#}"
        );
    }
}
