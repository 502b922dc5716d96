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

use std::time::{Duration, Instant};

use confab_engine::testing::fixtures::{temp_dir, write_clip};
use confab_engine::testing::{small_engine_config, start_engine};
use confab_engine::{AudioInput, EngineCommand, VideoInput};
use confab_test_support::signaling::start_server_runtime;

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
