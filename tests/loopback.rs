//! `confab loopback` end to end: the report of a short call between two in-process engines over
//! real UDP must be healthy in every field, on synthetic media and on file media. The assertions
//! are about behaviour, never wall-clock speed (speed lives in the report itself).
//!
//! File fixtures ([`confab_engine::testing::fixtures`]) are written into a temporary directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use confab::loopback::{LoopbackOptions, run};
use confab_engine::testing::fixtures::{temp_dir, write_clip, write_tone};

/// A short, small loopback call; its report must be healthy in every field the issue names.
#[test]
fn loopback_call_is_healthy_both_ways() {
    let report = run(&LoopbackOptions {
        seconds: 4.0,
        width: 320,
        height: 240,
        fps: 15,
        bitrate_kbps: 400,
        video_file: None,
        audio_file: None,
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
}

#[test]
fn loopback_runs_on_file_media() {
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
