#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use super::*;

fn at_ms(ms: u64) -> CaptureTime {
    CaptureTime::from_micros(ms * 1000)
}

/// An analyzer fed pictures (no markers) decoded at these milliseconds, all 64x48.
fn fed(times_ms: &[u64]) -> VideoAnalyzer {
    let frame = I420Frame::black(64, 48).unwrap();
    let mut v = VideoAnalyzer::default();
    for t in times_ms {
        v.push(&frame, at_ms(*t), false);
    }
    v
}

const INTERVAL: Duration = Duration::from_millis(33);

#[test]
fn steady_video_is_never_frozen() {
    let times: Vec<u64> = (0..300).map(|i| 1000 + i * 33).collect();
    let v = fed(&times);
    assert_eq!(v.frozen_ms(at_ms(1000), at_ms(10_900), INTERVAL), 0.0);
    assert_eq!(v.decode_times().len(), 300);
    // 33 ms apart: 30 or 31 pictures in each whole second.
    let fps = v.fps_per_second(at_ms(1000), at_ms(10_900));
    assert_eq!(fps.len(), 9);
    assert!(fps.iter().all(|f| (30..=31).contains(f)), "{fps:?}");
    assert_eq!(v.fps_p10(at_ms(1000), at_ms(10_900)), Some(30.0));
    assert_eq!(v.fps_p10(at_ms(1000), at_ms(1500)), None, "under a second");
}

#[test]
fn each_gap_over_three_intervals_counts_whole_and_clipped_to_the_window() {
    // 90 ms is under 3 × 33 ms: not frozen. 400 ms counts whole. 250 ms at the window's
    // edges counts only inside it.
    let v = fed(&[0, 33, 66, 156, 556, 589, 800, 1050, 1083]);
    assert_eq!(
        v.frozen_ms(at_ms(0), at_ms(1083), INTERVAL),
        400.0 + 211.0 + 250.0
    );
    // Window starting inside the 400 ms gap: only the part inside counts.
    assert_eq!(v.frozen_ms(at_ms(356), at_ms(589), INTERVAL), 200.0);
    // A gap still open at the end of the window counts up to the end (and the 250 ms gap the
    // window starts in counts from the window's start).
    assert_eq!(
        v.frozen_ms(at_ms(1000), at_ms(2083), INTERVAL),
        50.0 + 1000.0
    );
    // The window starts once the call is connected: waiting 500 ms for the first picture is
    // frozen time like any other gap, and a short wait (under 3 intervals) is not.
    let late = fed(&[500, 533, 566]);
    assert_eq!(late.frozen_ms(at_ms(0), at_ms(566), INTERVAL), 500.0);
    assert_eq!(late.frozen_ms(at_ms(450), at_ms(566), INTERVAL), 0.0);
    // No picture at all: the whole window is frozen.
    assert_eq!(late.frozen_ms(at_ms(0), at_ms(400), INTERVAL), 400.0);
    assert_eq!(fed(&[]).frozen_ms(at_ms(0), at_ms(1000), INTERVAL), 1000.0);
}

#[test]
fn the_worst_seconds_and_the_first_picture_after_an_outage() {
    // 30 fps for 5 s, nothing for 3 s, then 30 fps for 2 s again.
    let mut times: Vec<u64> = (0..150).map(|i| i * 33).collect();
    times.extend((0..60).map(|i| 8000 + 20 + i * 33));
    let v = fed(&times);
    let fps = v.fps_per_second(at_ms(0), at_ms(10_000));
    assert_eq!(&fps[5..8], [0, 0, 0]);
    assert_eq!(v.fps_p10(at_ms(0), at_ms(10_000)), Some(0.0));
    assert_eq!(v.first_decoded_after(at_ms(7000)), Some(at_ms(8020)));
    assert_eq!(v.first_decoded_after(at_ms(20_000)), None);
    let frozen = v.frozen_ms(at_ms(0), at_ms(10_000), INTERVAL);
    assert_eq!(frozen, 8020.0 - 149.0 * 33.0, "the one gap, whole");
    assert_eq!(v.freezes, 1, "one gap over 500 ms");
}

#[test]
fn resolution_changes_are_counted() {
    let mut v = VideoAnalyzer::default();
    let sizes = [(64, 48), (64, 48), (32, 24), (32, 24), (64, 48)];
    for (i, (w, h)) in sizes.into_iter().enumerate() {
        v.push(
            &I420Frame::black(w, h).unwrap(),
            at_ms(i as u64 * 33),
            false,
        );
    }
    assert_eq!(v.resolution_changes, 2);
    assert_eq!(v.resolution, Some((64, 48)));
}
