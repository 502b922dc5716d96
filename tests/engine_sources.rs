//! File-fed media and switching sources mid-call.
//!
//! Fixtures are written by the tests into a temporary directory: a Y4M clip rendered from the
//! synthetic pattern and a WAV tone, so the same clip could feed Confab and another system in a
//! side-by-side benchmark.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::engine::{small_engine_config, start_engine, start_server_runtime};
use confab::engine::media::CaptureTime;
use confab::engine::media::synthetic_video::SyntheticVideo;
use confab::engine::media::wav::write_wav;
use confab::engine::media::y4m::Y4mWriter;
use confab::engine::{AudioInput, EngineCommand, VideoInput};
use confab::loopback::{LoopbackOptions, run};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `frames` pictures of the test pattern at `w`x`h`, 15 fps.
fn write_clip(path: &Path, w: u32, h: u32, frames: u32) {
    let pattern = SyntheticVideo::new(w, h, 15).unwrap();
    let mut writer = Y4mWriter::create(path, w, h, 15).unwrap();
    for n in 0..frames {
        writer
            .write_frame(&pattern.render(n, CaptureTime::from_micros(u64::from(n) * 66_666)))
            .unwrap();
    }
    writer.finish().unwrap();
}

/// One second of a 440 Hz tone at 48 kHz.
fn write_tone(path: &Path) {
    let samples: Vec<f32> = (0..48_000)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin())
        .collect();
    write_wav(path, &samples).unwrap();
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

#[test]
fn switching_sources_mid_call_changes_what_the_far_side_decodes() {
    let dir = temp_dir("switch");
    let clip = dir.join("small.y4m");
    write_clip(&clip, 160, 120, 20);
    let (rt, server) = start_server_runtime();
    let a = start_engine(small_engine_config("ann"));
    let b = start_engine(small_engine_config("ben"));
    for e in [&a, &b] {
        e.send(EngineCommand::Join {
            url: server.ws_url(),
            room: "switch".into(),
            password: None,
        })
        .unwrap();
    }
    let wait_for_size = |w: u32, h: u32| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "ben never decoded {w}x{h} from ann"
            );
            while a.events().try_recv().is_ok() {}
            while b.events().try_recv().is_ok() {}
            if let Ok(f) = b.video().recv_timeout(Duration::from_millis(50))
                && f.from.is_some()
                && (f.frame.width(), f.frame.height()) == (w, h)
            {
                return;
            }
        }
    };
    wait_for_size(320, 240);
    a.send(EngineCommand::SelectSources {
        video: VideoInput::Y4mFile(clip),
        audio: AudioInput::Synthetic,
    })
    .unwrap();
    // The same video track now carries the clip at its own size.
    wait_for_size(160, 120);
    drop((a, b));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(dir);
}
