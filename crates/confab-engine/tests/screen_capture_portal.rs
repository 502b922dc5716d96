//! The Wayland screen-capture source (`PortalScreenSource`: the ScreenCast portal, then the
//! PipeWire stream it grants) against a real session bus, a real PipeWire daemon with
//! WirePlumber, and a real PipeWire video source showing the known test picture
//! (`common/screen_picture.rs` explains the picture). The portal is the test's own, at the
//! device boundary (`confab_test_support::portal_desktop` says why the real backends cannot
//! run on a machine without a GPU); everything on the app's side is real: D-Bus requests and
//! responses, the PipeWire connection the portal hands over, format negotiation, shared-memory
//! buffers, conversion.
//!
//! Covered, in one test (the source reads the session bus from the environment, so this binary
//! sets it before anything else runs and holds a single test):
//! - the shared picture arrives as it was shown (PSNR against the pipeline's own conversion of
//!   the same picture; block colours), and what the app asked the portal for (monitors and
//!   windows, the pointer drawn in, nothing remembered);
//! - a 2560x1440 screen arrives scaled to 1920x1080;
//! - the desktop's "stop sharing" (the session's `Closed` signal) ends capture with
//!   `ScreenError::PortalEnded`; the shared node going away ends it too;
//! - dropping the source closes its portal session;
//! - the user cancelling the dialog is `ScreenError::PortalCancelled`;
//! - no portal on the bus is `ScreenError::NoPortal`, saying what to install.
//!
//! Needs dbus-daemon, pipewire, wireplumber, pw-dump and GStreamer's pipewiresink (`make deps`
//! installs them).
#![cfg(all(target_os = "linux", feature = "wayland"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unsafe_code,
    reason = "tests; set_var before any other thread reads the environment (one test per binary)"
)]

use std::time::{Duration, Instant};

use confab_engine::devices::screen::{PortalScreenSource, ScreenError};
use confab_engine::media::convert::{i420_to_rgba, psnr, rgba_to_i420};
use confab_engine::media::{CaptureTime, I420Frame, SourceError, VideoSource};
use confab_test_support::portal_desktop::{PortalAnswer, PortalDesktop};

#[path = "common/screen_picture.rs"]
mod screen_picture;

use screen_picture::{BLOCKS, bgrx, rgba_from_bgrx};

const W: u32 = 1920;
const H: u32 = 1080;
/// The producer's frame rate.
const FPS: u32 = 15;
/// The luma PSNR a picture must reach against the reference: the producer hands over the
/// exact BGRx pixels and both sides convert with the same BT.601 code, so anything below this
/// is a wrong stride, byte order, size or stale picture.
const MIN_PSNR: f64 = 45.0;

/// The picture at `version`, `width` x `height`, as the pipeline's own conversion makes it.
fn reference(width: u32, height: u32, version: u32) -> I420Frame {
    rgba_to_i420(
        &rgba_from_bgrx(&bgrx(width, height, version)),
        width,
        height,
        CaptureTime(0),
    )
    .unwrap()
}

/// Frames from `source` until one reaches `min` dB against `want` (the first pictures may
/// still be of the previous node), or panics after 10 s with the best seen.
fn wait_for_picture(source: &mut PortalScreenSource, want: &I420Frame, min: f64) -> I420Frame {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut best = 0.0f64;
    loop {
        let frame = source.next_frame().unwrap();
        if (frame.width(), frame.height()) == (want.width(), want.height()) {
            let p = psnr(want, &frame).unwrap();
            if p >= min {
                return frame;
            }
            best = best.max(p);
        }
        assert!(
            Instant::now() < deadline,
            "no matching picture in 10 s (best {best:.1} dB)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Frames until capture ends; the error, or a panic after `within`.
fn wait_for_end(source: &mut PortalScreenSource, within: Duration) -> SourceError {
    let deadline = Instant::now() + within;
    loop {
        match source.next_frame() {
            Ok(_) => assert!(
                Instant::now() < deadline,
                "capture did not end within {within:?}"
            ),
            Err(e) => return e,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_screen_granted_by_the_portal_is_captured_and_every_way_it_ends_is_told() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut desktop = PortalDesktop::start_with(|env| {
        for (key, value) in env {
            // SAFETY: one test in this binary, and no other thread has started yet (the
            // desktop calls this before starting any).
            unsafe { std::env::set_var(key, value) };
        }
    });

    // The picture, as shown.
    desktop.show_picture(&bgrx(W, H, 0), (W, H), FPS);
    let mut source =
        PortalScreenSource::open(15).unwrap_or_else(|e| panic!("{e}\n{}", desktop.logs()));
    assert_eq!(
        source.description(),
        "a monitor (chosen in the desktop's dialog)"
    );
    let asked = desktop.select_options();
    assert!(
        asked["types"].contains('3'),
        "monitors and windows asked for: {asked:?}"
    );
    assert!(
        asked["cursor_mode"].contains('2'),
        "the pointer drawn in: {asked:?}"
    );
    assert!(
        asked["persist_mode"].contains('0'),
        "nothing remembered: {asked:?}"
    );
    let want = reference(W, H, 0);
    let frame = wait_for_picture(&mut source, &want, MIN_PSNR);
    let db = psnr(&want, &frame).unwrap();
    let mut rgba = Vec::new();
    i420_to_rgba(&frame, &mut rgba).unwrap();
    for ((x, y, w, h), colour) in BLOCKS {
        let (cx, cy) = (x + w / 2, y + h / 2);
        let i = ((cy * W + cx) * 4) as usize;
        for c in 0..3 {
            let d = i32::from(rgba[i + c]) - i32::from(colour[c]);
            assert!(
                d.abs() <= 6,
                "block at {cx},{cy}: {:?} vs {colour:?}",
                &rgba[i..i + 3]
            );
        }
    }
    println!("portal capture: {db:.1} dB against the shown picture");

    // Frames keep coming at the share's rate while nothing changes (the last picture again).
    let started = Instant::now();
    for _ in 0..10 {
        let frame = source.next_frame().unwrap();
        assert_eq!((frame.width(), frame.height()), (W, H));
    }
    println!("10 frames in {:?}", started.elapsed());

    // The desktop's "stop sharing": capture ends, saying so.
    desktop.close_sessions();
    let ended = wait_for_end(&mut source, Duration::from_secs(5));
    assert_eq!(
        ended.to_string(),
        SourceError::from(ScreenError::PortalEnded).to_string()
    );
    drop(source);

    // A larger screen is scaled to fit 1080p; dropping the source closes its session.
    let (bw, bh) = (2560, 1440);
    desktop.show_picture(&bgrx(bw, bh, 1), (bw, bh), FPS);
    let (opened, closed) = desktop.sessions();
    let mut source = PortalScreenSource::open(15).unwrap();
    let mut scaler = confab_engine::media::convert::Scaler::new();
    let want = scaler.scale(&reference(bw, bh, 1), W, H).unwrap();
    wait_for_picture(&mut source, &want, 35.0);
    drop(source);
    assert_eq!(
        desktop.sessions(),
        (opened + 1, closed + 1),
        "the share's session was closed"
    );

    // The shared node goes away (the window closed): capture ends.
    desktop.show_picture(&bgrx(W, H, 0), (W, H), FPS);
    let mut source = PortalScreenSource::open(15).unwrap();
    wait_for_picture(&mut source, &reference(W, H, 0), MIN_PSNR);
    desktop.stop_picture();
    let ended = wait_for_end(&mut source, Duration::from_secs(10));
    println!("node gone: {ended}");
    drop(source);

    // The user cancels the dialog.
    desktop.show_picture(&bgrx(W, H, 0), (W, H), FPS);
    desktop.answer(PortalAnswer::Cancel);
    let err = PortalScreenSource::open(15).unwrap_err();
    assert!(matches!(err, ScreenError::PortalCancelled), "{err}");

    // No portal at all.
    desktop.stop_portal();
    let err = PortalScreenSource::open(15).unwrap_err();
    assert!(matches!(err, ScreenError::NoPortal(_)), "{err}");
    assert!(err.to_string().contains("xdg-desktop-portal"), "{err}");
    println!("no portal: {err}");
}
