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

use std::collections::BTreeSet;
use std::time::Duration;

use confab_engine::observer::{CallObserver, FrameSink};
use confab_engine::testing::fixtures::{temp_dir, write_clip};
use confab_engine::testing::{small_engine_config, start_engine, wait_all_until};
use confab_engine::{AudioInput, EngineCommand, VideoFrameEvent, VideoInput};

/// The sizes of the remote pictures decoded so far.
#[derive(Default)]
struct Sizes(BTreeSet<(u32, u32)>);

impl FrameSink for Sizes {
    fn frame(&mut self, _from: &str, f: &VideoFrameEvent) {
        self.0.insert((f.frame.width(), f.frame.height()));
    }
}
use confab_test_support::signaling::start_server_runtime;

/// Pumps both until ben has decoded a picture of `w`x`h` from ann.
fn wait_for_size(a: &mut CallObserver<Sizes>, b: &mut CallObserver<Sizes>, w: u32, h: u32) {
    wait_all_until(&mut [a, b], &format!("ben decodes {w}x{h} from ann"), |m| {
        m[1].frames.0.contains(&(w, h))
    });
}

#[test]
fn switching_sources_mid_call_changes_what_the_far_side_decodes() {
    let dir = temp_dir("switch");
    let clip = dir.join("small.y4m");
    write_clip(&clip, 160, 120, 20);
    let (rt, server) = start_server_runtime();
    let start = |name: &str| {
        CallObserver::with_frames(
            name,
            start_engine(small_engine_config(name)),
            Sizes::default(),
        )
    };
    let mut a = start("ann");
    let mut b = start("ben");
    for e in [&a, &b] {
        e.send(EngineCommand::Join {
            url: server.ws_url(),
            room: "switch".into(),
            password: None,
        })
        .unwrap();
    }
    wait_for_size(&mut a, &mut b, 320, 240);
    a.send(EngineCommand::SelectSources {
        video: VideoInput::Y4mFile(clip),
        audio: AudioInput::Synthetic,
    })
    .unwrap();
    // The same video track now carries the clip at its own size.
    wait_for_size(&mut a, &mut b, 160, 120);
    drop((a, b));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(dir);
}
