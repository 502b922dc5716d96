//! When to send a participant another keyframe request (RTCP PLI).
//!
//! A decoder that lost its reference chain asks for a keyframe with every picture it has to
//! skip (up to 30 times a second). The first request goes out at once; while the need lasts,
//! the next ones are spaced [`PLI_INTERVAL`] apart and then further ([`PLI_BACKOFF`] each time,
//! up to [`MAX_PLI_INTERVAL`]). A fixed 300 ms spacing was a storm on a slow path: at
//! `rate=600kbit` a keyframe takes longer than that to arrive, so each one was requested again
//! before it landed, and the extra keyframes filled the path that was delaying the first one.
//! A pause of [`WAIT_ENDED`] between two requests means the decoder got its keyframe in between:
//! the next need starts over at the short spacing.
//!
//! Contract: pure; [`PliPacing::due`] is told every request with the time it was made.

use std::time::{Duration, Instant};

/// Spacing of the first repeated request, and the shortest spacing between two PLIs.
pub(crate) const PLI_INTERVAL: Duration = Duration::from_millis(300);
/// Growth of the spacing while a need lasts.
pub(crate) const PLI_BACKOFF: f64 = 1.5;
/// Longest spacing between two PLIs while a need lasts.
pub(crate) const MAX_PLI_INTERVAL: Duration = Duration::from_millis(1200);
/// No request for this long: the previous need was met.
pub(crate) const WAIT_ENDED: Duration = Duration::from_millis(250);

/// The PLI pacing state of one participant.
#[derive(Debug, Clone)]
pub(crate) struct PliPacing {
    last_pli: Option<Instant>,
    last_need: Option<Instant>,
    interval: Duration,
}

impl Default for PliPacing {
    fn default() -> Self {
        Self {
            last_pli: None,
            last_need: None,
            interval: PLI_INTERVAL,
        }
    }
}

impl PliPacing {
    /// A request was made at `now`: whether a PLI should go out for it.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let fresh = self
            .last_need
            .is_none_or(|t| now.saturating_duration_since(t) >= WAIT_ENDED);
        self.last_need = Some(now);
        if fresh {
            self.interval = PLI_INTERVAL;
        }
        if let Some(t) = self.last_pli {
            if now.saturating_duration_since(t) < self.interval {
                return false;
            }
            if !fresh {
                // The previous PLI has not brought a keyframe yet: wait longer for this one.
                self.interval = self.interval.mul_f64(PLI_BACKOFF).min(MAX_PLI_INTERVAL);
            }
        }
        self.last_pli = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests every 33 ms (a decoder skipping every picture) from `from` for `span`; the
    /// instants at which a PLI went out, relative to `origin`.
    fn ask(p: &mut PliPacing, origin: Instant, from: Duration, span: Duration) -> Vec<u128> {
        let mut out = Vec::new();
        let mut t = from;
        while t < from + span {
            if p.due(origin + t) {
                out.push(t.as_millis());
            }
            t += Duration::from_millis(33);
        }
        out
    }

    #[test]
    fn a_lasting_need_is_asked_for_less_and_less_often() {
        let mut p = PliPacing::default();
        let t0 = Instant::now();
        let sent = ask(&mut p, t0, Duration::ZERO, Duration::from_secs(6));
        let gaps: Vec<u128> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(sent[0], 0, "the first request goes out at once");
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
        assert!((300..340).contains(&gaps[0]), "{gaps:?}");
        assert!(gaps[1] >= 450, "{gaps:?}");
        let last = *gaps.last().unwrap();
        assert!((1200..1240).contains(&last), "capped: {gaps:?}");
    }

    #[test]
    fn a_need_after_a_pause_starts_over_at_the_short_spacing() {
        let mut p = PliPacing::default();
        let t0 = Instant::now();
        ask(&mut p, t0, Duration::ZERO, Duration::from_secs(3));
        // The keyframe came: no request for half a second. The next loss asks at once, and
        // again 300 ms later.
        let sent = ask(
            &mut p,
            t0,
            Duration::from_millis(3500),
            Duration::from_millis(400),
        );
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!((300..340).contains(&(sent[1] - sent[0])), "{sent:?}");
    }

    #[test]
    fn two_plis_are_never_closer_than_the_short_spacing() {
        let mut p = PliPacing::default();
        let t0 = Instant::now();
        assert!(p.due(t0));
        // A pause long enough to end the need, but a PLI only just went out.
        assert!(!p.due(t0 + WAIT_ENDED));
        assert!(p.due(t0 + PLI_INTERVAL));
    }
}
