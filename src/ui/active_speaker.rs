//! Who is talking, from the engine's per-participant levels (`EngineEvent::SpeakerLevels`,
//! every 100 ms while anyone is heard): the highlight on a tile and the large tile of the
//! speaker view.
//!
//! Owns: [`ActiveSpeaker`]. Contract: levels are smoothed with a fast attack and a slow release
//! ([`RELEASE_DB_PER_REPORT`]), so the pauses between words and between beeps do not make the
//! highlight blink; someone is *speaking* while the smoothed level is above [`SPEAKING_DB`]. The
//! *active* speaker changes only to someone who has been the loudest speaker for
//! [`SWITCH_AFTER_REPORTS`] reports in a row (a cough does not take the big tile), and stays the
//! active speaker when everybody goes quiet (as in Meet and Zoom).

use std::collections::BTreeMap;

use signaling_client::ParticipantId;

/// Smoothed level above which someone counts as speaking (dBFS).
pub const SPEAKING_DB: f32 = -45.0;
/// How far the smoothed level falls per report (100 ms) when the sound stops: 30 dB a second.
pub const RELEASE_DB_PER_REPORT: f32 = 3.0;
/// Reports in a row someone must be the loudest speaker before they become the active one.
pub const SWITCH_AFTER_REPORTS: u32 = 5;

/// Smoothed levels and the active speaker.
#[derive(Debug, Default)]
pub struct ActiveSpeaker {
    smoothed: BTreeMap<ParticipantId, f32>,
    active: Option<ParticipantId>,
    candidate: Option<(ParticipantId, u32)>,
}

impl ActiveSpeaker {
    /// Takes one report of levels (dBFS per participant).
    pub fn update(&mut self, levels: &[(ParticipantId, f32)]) {
        // Everyone fades, reported or not (someone missing from a report is not talking).
        for s in self.smoothed.values_mut() {
            *s -= RELEASE_DB_PER_REPORT;
        }
        for (id, level) in levels {
            let s = self.smoothed.entry(id.clone()).or_insert(-100.0);
            *s = s.max(*level);
        }
        let loudest = self
            .smoothed
            .iter()
            .filter(|(_, l)| **l > SPEAKING_DB)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, _)| id.clone());
        let Some(loudest) = loudest else {
            self.candidate = None;
            return;
        };
        if self.active.as_ref() == Some(&loudest) {
            self.candidate = None;
            return;
        }
        let count = match &self.candidate {
            Some((id, n)) if *id == loudest => n + 1,
            _ => 1,
        };
        // The first voice in a call takes the big tile at once.
        if count >= SWITCH_AFTER_REPORTS || self.active.is_none() {
            self.active = Some(loudest);
            self.candidate = None;
        } else {
            self.candidate = Some((loudest, count));
        }
    }

    /// Whether `id` is speaking now.
    pub fn speaking(&self, id: &ParticipantId) -> bool {
        self.smoothed.get(id).is_some_and(|l| *l > SPEAKING_DB)
    }

    /// Who has the big tile: the last one to hold the floor.
    pub fn active(&self) -> Option<&ParticipantId> {
        self.active.as_ref()
    }

    /// Forgets someone who left.
    pub fn remove(&mut self, id: &ParticipantId) {
        self.smoothed.remove(id);
        if self.active.as_ref() == Some(id) {
            self.active = None;
        }
        if self.candidate.as_ref().is_some_and(|(c, _)| c == id) {
            self.candidate = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId(s.to_owned())
    }

    /// A beep every 500 ms: loud for one report, quiet for four.
    fn beeping(n: u32) -> f32 {
        if n.is_multiple_of(5) { -12.0 } else { -100.0 }
    }

    #[test]
    fn a_beeping_participant_stays_highlighted_between_beeps() {
        let mut a = ActiveSpeaker::default();
        for n in 0..30 {
            a.update(&[(id("ben"), beeping(n)), (id("cy"), -100.0)]);
            assert!(a.speaking(&id("ben")), "report {n}: the highlight blinked");
            assert!(!a.speaking(&id("cy")));
        }
        assert_eq!(a.active(), Some(&id("ben")));
    }

    #[test]
    fn someone_missing_from_the_reports_fades_too() {
        let mut a = ActiveSpeaker::default();
        a.update(&[(id("ben"), -10.0)]);
        assert!(a.speaking(&id("ben")));
        for _ in 0..20 {
            a.update(&[(id("cy"), -100.0)]);
        }
        assert!(!a.speaking(&id("ben")), "Ben's highlight stuck");
    }

    #[test]
    fn the_big_tile_moves_only_to_someone_who_keeps_talking() {
        let mut a = ActiveSpeaker::default();
        for _ in 0..10 {
            a.update(&[(id("ben"), -20.0), (id("cy"), -100.0)]);
        }
        assert_eq!(a.active(), Some(&id("ben")));
        // Cy coughs once, louder: not enough.
        a.update(&[(id("ben"), -20.0), (id("cy"), -5.0)]);
        a.update(&[(id("ben"), -20.0), (id("cy"), -100.0)]);
        for _ in 0..10 {
            a.update(&[(id("ben"), -20.0), (id("cy"), -100.0)]);
        }
        assert_eq!(a.active(), Some(&id("ben")), "a cough took the floor");
        // Ben stops, Cy talks: after SWITCH_AFTER_REPORTS reports Cy has it.
        let mut reports = 0;
        while a.active() != Some(&id("cy")) {
            a.update(&[(id("ben"), -100.0), (id("cy"), -20.0)]);
            reports += 1;
            assert!(reports < 20, "Cy never got the floor");
        }
        assert!(
            reports >= SWITCH_AFTER_REPORTS,
            "switched after {reports} reports"
        );
        // Everybody quiet: Cy keeps the big tile, nobody is highlighted.
        for _ in 0..40 {
            a.update(&[(id("ben"), -100.0), (id("cy"), -100.0)]);
        }
        assert_eq!(a.active(), Some(&id("cy")));
        assert!(!a.speaking(&id("cy")) && !a.speaking(&id("ben")));
        a.remove(&id("cy"));
        assert_eq!(a.active(), None);
    }
}
