//! How loud each remote participant is, from the audio we play of them: the input of the UI's
//! active-speaker highlight.
//!
//! Owns: [`SpeakingMeter`]. Contract: fed every played 20 ms frame's per-participant energies
//! (mean squares, from [`crate::media::mixer::MixedFrame::energies`]); every
//! [`FRAMES_PER_REPORT`] frames (100 ms) it returns each participant's level in dBFS over that
//! window while anyone is heard and for [`QUIET_TAIL_REPORTS`] windows (2 s) after everybody
//! went quiet, then nothing until someone is heard again: an idle call does not wake the UI ten
//! times a second, yet a highlight that fades over time always sees the silence it fades in.
//! Smoothing against flicker is the UI's: it knows how long a highlight should hold.

use std::collections::BTreeMap;

use crate::devices::sound_check::mean_square_dbfs;

/// 20 ms frames per level report: 100 ms.
pub(crate) const FRAMES_PER_REPORT: u32 = 5;

/// Levels at or below this are silence (dBFS).
pub(crate) const SILENT_DB: f32 = -70.0;

/// Reports still made after everybody went quiet: 2 s.
pub(crate) const QUIET_TAIL_REPORTS: u32 = 20;

/// Per-participant levels over 100 ms windows.
#[derive(Debug)]
pub(crate) struct SpeakingMeter<K> {
    sums: BTreeMap<K, f32>,
    frames: u32,
    quiet_reports_left: u32,
}

impl<K: Ord + Clone> Default for SpeakingMeter<K> {
    fn default() -> Self {
        Self {
            sums: BTreeMap::new(),
            frames: 0,
            quiet_reports_left: 0,
        }
    }
}

impl<K: Ord + Clone> SpeakingMeter<K> {
    /// Adds one played frame; returns `(participant, dBFS)` for everyone heard in the window
    /// when a window is complete and worth reporting (see the module docs).
    pub(crate) fn push(&mut self, energies: &[(K, f32)]) -> Option<Vec<(K, f32)>> {
        for (id, e) in energies {
            *self.sums.entry(id.clone()).or_insert(0.0) += *e;
        }
        self.frames += 1;
        if self.frames < FRAMES_PER_REPORT {
            return None;
        }
        let frames = self.frames as f32;
        self.frames = 0;
        let levels: Vec<(K, f32)> = std::mem::take(&mut self.sums)
            .into_iter()
            .map(|(id, sum)| (id, mean_square_dbfs(f64::from(sum / frames)) as f32))
            .collect();
        if levels.iter().any(|(_, l)| *l > SILENT_DB) {
            self.quiet_reports_left = QUIET_TAIL_REPORTS;
            return Some(levels);
        }
        if self.quiet_reports_left == 0 {
            return None;
        }
        self.quiet_reports_left -= 1;
        Some(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_100_ms_while_anyone_is_heard_and_2_s_after() {
        let mut m = SpeakingMeter::default();
        // A full-scale sine has a mean square of 0.5: -3 dBFS.
        let talking = [("ann", 0.5f32), ("ben", 0.0)];
        for _ in 0..FRAMES_PER_REPORT - 1 {
            assert_eq!(m.push(&talking), None);
        }
        let levels = m.push(&talking).expect("a window is complete");
        assert_eq!(levels.len(), 2);
        assert!((levels[0].1 - -3.01).abs() < 0.05, "{levels:?}");
        assert_eq!(levels[1], ("ben", -100.0));
        // Silence: reported for 2 s (the talking stopped), then not again.
        let quiet = [("ann", 0.0f32), ("ben", 0.0)];
        let mut reports = 0;
        for _ in 0..FRAMES_PER_REPORT * (QUIET_TAIL_REPORTS + 10) {
            reports += u32::from(m.push(&quiet).is_some());
        }
        assert_eq!(reports, QUIET_TAIL_REPORTS);
    }

    #[test]
    fn half_a_window_of_sound_reads_3_db_lower() {
        let mut m = SpeakingMeter::default();
        let mut last = None;
        for i in 0..FRAMES_PER_REPORT * 2 {
            let e = if i.is_multiple_of(2) { 0.5 } else { 0.0 };
            if let Some(l) = m.push(&[(1u8, e)]) {
                last = Some(l);
            }
        }
        let (_, level) = last.expect("reported")[0];
        // 5 frames, every other one a -3 dBFS sine: 2 or 3 of 5 frames, -7 or -5 dBFS.
        assert!((-7.5..-4.5).contains(&level), "{level}");
    }
}
