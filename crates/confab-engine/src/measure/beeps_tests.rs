#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;
use crate::media::synthetic_audio::SyntheticAudio;

/// Feeds `seconds` of the synthetic tone, 20 ms at a time from media time `start_ms`, to the
/// probe's capture side (and, when `play`, to its playout side `delay_ms` later), skipping the
/// frames whose start falls in `muted` (ms).
fn feed(probe: &BeepProbe, start_ms: u64, seconds: u64, play: Option<u64>, muted: (u64, u64)) {
    let source = SyntheticAudio::new(SyntheticAudioConfig::default()).unwrap();
    for i in 0..seconds * 50 {
        let t = start_ms + i * 20;
        let frame = source.render(i * 960, 960, CaptureTime::from_micros(t * 1000));
        probe.audio_captured(&frame);
        if let Some(delay) = play
            && !(muted.0..muted.1).contains(&t)
        {
            probe.audio_played(
                &frame.samples,
                CaptureTime::from_micros((t + delay) * 1000),
                true,
            );
        }
    }
}

#[test]
fn beeps_are_counted_per_window_and_found_after_an_outage() {
    let sender = BeepProbe::default();
    feed(&sender, 0, 10, None, (0, 0));
    // Beeps every 500 ms: 20 in 10 s, 4 from 1.9 s to 3.6 s (2, 2.5, 3 and 3.5 s).
    assert_eq!(
        sender.beeps_captured_between(CaptureTime(0), CaptureTime(10_000_000)),
        20
    );
    assert_eq!(
        sender.beeps_captured_between(CaptureTime(1_900_000), CaptureTime(3_600_000)),
        4
    );
    let receiver = BeepProbe::default();
    // Heard 80 ms later, except what was captured between 4 s and 6.1 s.
    feed(&receiver, 0, 10, Some(80), (4000, 6100));
    let heard = receiver.beeps_played();
    assert!((15..=16).contains(&heard), "{heard}");
    // The path came back at 6.1 s (6.18 s at the receiver's clock): the next beep is the one
    // captured at 6.5 s, heard at 6.58 s.
    let first = receiver.first_played_after(CaptureTime(6_100_000)).unwrap();
    assert!((6_570_000..6_600_000).contains(&first.0), "{first:?}");
    assert!(
        receiver
            .first_played_after(CaptureTime(20_000_000))
            .is_none()
    );
}
