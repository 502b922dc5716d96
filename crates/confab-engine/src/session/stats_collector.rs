//! Once-a-second statistics: turns each peer's cumulative counters (from the link, the decoder
//! and the encoder) into the rates and totals of [`ParticipantStats`], and picks the video
//! bitrate target from the lowest bandwidth estimate, and the audio loss figure the Opus
//! encoder's FEC follows (the worst any connected peer reports for our audio).
//!
//! Contract: pure; the session loop gathers one [`PeerSample`] per peer (the only `await` is
//! `link.stats()`, on the control task, never on the media path) and hands them over with the
//! time they were taken. Rates need the previous sample of the same peer, which the collector
//! keeps; a peer seen for the first time reports rates of 0.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use signaling_client::ParticipantId;

use crate::api::{LinkState, ParticipantStats};
use crate::incoming::DecodeCounters;
use crate::media::jitter_buffer::JitterStats;
use crate::peer::PeerStats;

use super::call_core::PeerView;

/// The decoder's counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct DecoderSnapshot {
    pub(crate) decoded: u64,
    pub(crate) decode_errors: u64,
    pub(crate) skipped_awaiting_keyframe: u64,
    pub(crate) dropped_decoder_behind: u64,
    pub(crate) dropped_consumer_slow: u64,
    pub(crate) decode_micros: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bytes_received: u64,
}

impl DecoderSnapshot {
    /// Reads the live counters.
    pub(crate) fn of(c: &DecodeCounters) -> Self {
        Self {
            decoded: c.decoded.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            skipped_awaiting_keyframe: c.skipped_awaiting_keyframe.load(Ordering::Relaxed),
            dropped_decoder_behind: c.dropped_decoder_behind.load(Ordering::Relaxed),
            dropped_consumer_slow: c.dropped_consumer_slow.load(Ordering::Relaxed),
            decode_micros: c.decode_micros.load(Ordering::Relaxed),
            width: c.width.load(Ordering::Relaxed),
            height: c.height.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }
}

/// The encoder's counters (shared by every peer: one encode feeds all).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct EncoderSnapshot {
    pub(crate) frames: u64,
    pub(crate) micros: u64,
    /// The screen encoder's pictures and bytes (zero without a share).
    pub(crate) screen_frames: u64,
    pub(crate) screen_bytes: u64,
    pub(crate) screen_micros: u64,
}

/// Its audio playout's counters (from its jitter buffer) at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioPlayoutSnapshot {
    /// Lost packets rebuilt from the next packet's in-band FEC.
    pub(crate) fec_recovered: u64,
    /// 20 ms frames synthesised (PLC) because their packet was lost, late or undecodable, or
    /// because the buffer ran dry.
    pub(crate) concealed_frames: u64,
    /// 20 ms frames played since playout started.
    pub(crate) played_frames: u64,
}

impl AudioPlayoutSnapshot {
    /// Reads a jitter buffer's counters.
    pub(crate) fn of(s: &JitterStats) -> Self {
        Self {
            fec_recovered: s.fec_recovered,
            concealed_frames: s.concealed + s.underruns,
            played_frames: s.played,
        }
    }
}

/// Everything about one peer at one moment.
#[derive(Debug, Clone)]
pub(crate) struct PeerSample {
    pub(crate) id: ParticipantId,
    pub(crate) view: PeerView,
    pub(crate) link: PeerStats,
    pub(crate) video_negotiated: bool,
    pub(crate) decoder: DecoderSnapshot,
    /// The decoder of its shared screen.
    pub(crate) screen: DecoderSnapshot,
    pub(crate) audio_delay_ms: f64,
    /// Packets its audio inlet dropped so far.
    pub(crate) audio_inlet_dropped: u64,
    /// Its audio playout's counters.
    pub(crate) audio: AudioPlayoutSnapshot,
}

#[derive(Debug, Clone)]
struct Previous {
    at: Instant,
    link: PeerStats,
    decoded: u64,
    encoded: u64,
    screen: DecoderSnapshot,
    screen_encoded: (u64, u64),
}

/// What one collection produced.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    /// One entry per sample, in sample order.
    pub(crate) stats: Vec<ParticipantStats>,
    /// The video bitrate to aim for, clamped to `[min, max]`, when some connected peer that
    /// receives our video has an estimate.
    pub(crate) target_bps: Option<u32>,
    /// The largest fraction (0..=1) of our audio a connected peer reported lost in its latest
    /// report, when one has reported.
    pub(crate) audio_loss: Option<f64>,
}

/// Keeps the previous sample of each peer (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct StatsCollector {
    previous: HashMap<ParticipantId, Previous>,
}

impl StatsCollector {
    /// Forgets a peer that left.
    pub(crate) fn remove(&mut self, id: &ParticipantId) {
        self.previous.remove(id);
    }

    /// Turns this second's samples into stats and a bitrate target within `bounds_bps`.
    pub(crate) fn collect(
        &mut self,
        samples: Vec<PeerSample>,
        encoder: EncoderSnapshot,
        now: Instant,
        bounds_bps: (u32, u32),
    ) -> Collected {
        let mut stats = Vec::with_capacity(samples.len());
        let mut lowest_bwe: Option<u64> = None;
        let mut audio_loss: Option<f64> = None;
        for s in samples {
            let prev = self.previous.get(&s.id);
            let secs = prev
                .map(|p| now.duration_since(p.at).as_secs_f64())
                .filter(|s| *s > 0.0);
            let rate = |now_v: u64, prev_v: u64| -> f64 {
                secs.map(|s| now_v.saturating_sub(prev_v) as f64 / s)
                    .unwrap_or(0.0)
            };
            let kbps = |now_v: u64, prev_v: u64| rate(now_v, prev_v) * 8.0 / 1000.0;
            let zero = PeerStats::default();
            let prev_link = prev.map_or(&zero, |p| &p.link);
            let prev_decoded = prev.map_or(0, |p| p.decoded);
            let prev_encoded = prev.map_or(0, |p| p.encoded);
            let prev_screen = prev.map(|p| p.screen).unwrap_or_default();
            let prev_screen_encoded = prev.map_or((0, 0), |p| p.screen_encoded);
            let sd = &s.screen;
            let link = &s.link;
            let d = &s.decoder;
            // A peer we send no video to (no common codec) must not hold everyone's video
            // bitrate down to what its audio-only estimate says.
            if s.view.state == LinkState::Connected
                && s.video_negotiated
                && link.bandwidth_estimate_bps > 0
            {
                let audio_bps = rate(link.audio_bytes_sent, prev_link.audio_bytes_sent) * 8.0;
                let rtx_bps = rate(
                    link.retransmitted_bytes_sent,
                    prev_link.retransmitted_bytes_sent,
                ) * 8.0;
                let video = video_budget_bps(link.bandwidth_estimate_bps, audio_bps, rtx_bps);
                lowest_bwe = Some(lowest_bwe.map_or(video, |b| b.min(video)));
            }
            if s.view.state == LinkState::Connected
                && let Some(lost) = s.link.audio_fraction_lost_remote
            {
                audio_loss = Some(audio_loss.map_or(lost, |l| l.max(lost)));
            }
            let frame_ms = 20.0;
            stats.push(ParticipantStats {
                id: s.id.to_string(),
                name: s.view.name.clone(),
                rtt_ms: link.rtt_ms,
                packets_lost: link.video_packets_lost + link.audio_packets_lost,
                jitter_ms: link.video_jitter_ms,
                video_kbps_out: kbps(link.video_bytes_sent, prev_link.video_bytes_sent),
                video_kbps_in: kbps(link.video_bytes_received, prev_link.video_bytes_received),
                audio_kbps_out: kbps(link.audio_bytes_sent, prev_link.audio_bytes_sent),
                audio_kbps_in: kbps(link.audio_bytes_received, prev_link.audio_bytes_received),
                fps_out: rate(encoder.frames, prev_encoded),
                fps_in: rate(d.decoded, prev_decoded),
                resolution_in: (d.width > 0).then(|| format!("{}x{}", d.width, d.height)),
                frames_decoded: d.decoded,
                decode_errors: d.decode_errors,
                frames_skipped_awaiting_keyframe: d.skipped_awaiting_keyframe,
                frames_dropped_decoder_behind: d.dropped_decoder_behind,
                audio_packets_dropped_receiver_behind: s.audio_inlet_dropped,
                frames_dropped_consumer_slow: d.dropped_consumer_slow,
                plis_sent: link.plis_sent.max(s.view.plis_sent),
                nacks_sent: link.nacks_sent,
                keyframe_requests_received: link.keyframe_requests_received,
                candidate_type: link.candidate_type.clone(),
                local_candidates: link.local_candidates.clone(),
                bandwidth_estimate_kbps: link.bandwidth_estimate_bps as f64 / 1000.0,
                audio_delay_ms: s.audio_delay_ms,
                video_negotiated: s.video_negotiated,
                codec: if s.video_negotiated { "H264" } else { "none" },
                frames_sent: encoder.frames,
                video_bytes_received: link.video_bytes_received,
                audio_bytes_received: link.audio_bytes_received,
                encode_ms_per_frame: per_frame_ms(encoder.micros, encoder.frames),
                decode_ms_per_frame: per_frame_ms(d.decode_micros, d.decoded),
                retransmitted_packets_received: link.retransmitted_packets_received,
                retransmitted_packets_sent: link.retransmitted_packets_sent,
                fec_recovered_packets: s.audio.fec_recovered,
                audio_concealed_ms: s.audio.concealed_frames as f64 * frame_ms,
                audio_played_ms: s.audio.played_frames as f64 * frame_ms,
                screen_fps_in: rate(sd.decoded, prev_screen.decoded),
                screen_kbps_in: kbps(sd.bytes_received, prev_screen.bytes_received),
                screen_resolution_in: (sd.width > 0).then(|| format!("{}x{}", sd.width, sd.height)),
                screen_frames_decoded: sd.decoded,
                screen_decode_errors: sd.decode_errors,
                screen_fps_out: rate(encoder.screen_frames, prev_screen_encoded.0),
                screen_kbps_out: kbps(encoder.screen_bytes, prev_screen_encoded.1),
                screen_frames_sent: encoder.screen_frames,
                screen_encode_ms_per_frame: per_frame_ms(
                    encoder.screen_micros,
                    encoder.screen_frames,
                ),
                screen_bytes_received: sd.bytes_received,
            });
            self.previous.insert(
                s.id,
                Previous {
                    at: now,
                    link: s.link,
                    decoded: d.decoded,
                    encoded: encoder.frames,
                    screen: s.screen,
                    screen_encoded: (encoder.screen_frames, encoder.screen_bytes),
                },
            );
        }
        let (min, max) = bounds_bps;
        let target_bps =
            lowest_bwe.map(|bwe| (bwe.min(u64::from(u32::MAX)) as u32).clamp(min, max));
        Collected {
            stats,
            target_bps,
            audio_loss,
        }
    }
}

fn per_frame_ms(total_micros: u64, frames: u64) -> f64 {
    if frames == 0 {
        0.0
    } else {
        total_micros as f64 / frames as f64 / 1000.0
    }
}

/// Per-packet cost of audio on the wire beyond its payload (RTP 12, SRTP tag 10, UDP 8, IPv4 20
/// bytes at 50 packets per second), which the payload byte counters leave out.
const AUDIO_OVERHEAD_BPS: f64 = 50.0 * 50.0 * 8.0;

/// What the video encoder may use of a link's bandwidth `estimate_bps`: the estimate covers
/// everything the connection sends, so the audio (payload and overhead) and the
/// retransmissions of the last second come off it. Never less than half the estimate:
/// retransmissions are budgeted to at most half of it themselves (`rtx_guard`), and a burst of
/// them must not starve the picture they repair.
pub(crate) fn video_budget_bps(estimate_bps: u64, audio_bps: f64, rtx_bps: f64) -> u64 {
    let estimate = estimate_bps as f64;
    let audio = if audio_bps > 0.0 {
        audio_bps + AUDIO_OVERHEAD_BPS
    } else {
        0.0
    };
    (estimate - audio - rtx_bps).max(estimate / 2.0) as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(id: &str, state: LinkState, bytes_in: u64, decoded: u64, bwe: u64) -> PeerSample {
        PeerSample {
            id: ParticipantId(id.into()),
            view: PeerView {
                name: id.to_uppercase(),
                state,
                plis_sent: 2,
            },
            link: PeerStats {
                video_bytes_received: bytes_in,
                bandwidth_estimate_bps: bwe,
                plis_sent: 1,
                ..PeerStats::default()
            },
            video_negotiated: true,
            screen: DecoderSnapshot::default(),
            decoder: DecoderSnapshot {
                decoded,
                decode_micros: decoded * 2_000,
                width: 640,
                height: 360,
                ..DecoderSnapshot::default()
            },
            audio_delay_ms: 40.0,
            audio_inlet_dropped: 3,
            audio: AudioPlayoutSnapshot {
                fec_recovered: 4,
                concealed_frames: 5,
                played_frames: 500,
            },
        }
    }

    #[test]
    fn rates_come_from_the_previous_sample() {
        let mut c = StatsCollector::default();
        let t0 = Instant::now();
        let enc = |frames| EncoderSnapshot {
            frames,
            micros: frames * 3_000,
            ..EncoderSnapshot::default()
        };
        let first = c.collect(
            vec![sample("a", LinkState::Connected, 1_000, 10, 0)],
            enc(10),
            t0,
            (100_000, 2_000_000),
        );
        assert_eq!(
            first.stats[0].video_kbps_in, 0.0,
            "no rate without a previous sample"
        );
        assert_eq!(first.stats[0].fps_in, 0.0);
        let second = c.collect(
            vec![sample("a", LinkState::Connected, 126_000, 40, 0)],
            enc(40),
            t0 + Duration::from_secs(1),
            (100_000, 2_000_000),
        );
        let s = &second.stats[0];
        assert!(
            (s.video_kbps_in - 1000.0).abs() < 1e-9,
            "{}",
            s.video_kbps_in
        );
        assert!((s.fps_in - 30.0).abs() < 1e-9);
        assert!((s.fps_out - 30.0).abs() < 1e-9);
        assert_eq!(s.resolution_in.as_deref(), Some("640x360"));
        assert_eq!(
            s.plis_sent, 2,
            "the larger of the link's and the session's count"
        );
        assert!((s.decode_ms_per_frame - 2.0).abs() < 1e-9);
        assert!((s.encode_ms_per_frame - 3.0).abs() < 1e-9);
        assert_eq!(s.name, "A");
        assert_eq!(s.audio_packets_dropped_receiver_behind, 3);
        assert_eq!(s.fec_recovered_packets, 4);
        assert!((s.audio_concealed_ms - 100.0).abs() < 1e-9);
        assert!((s.audio_played_ms - 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn audio_loss_is_the_worst_connected_report() {
        let mut c = StatsCollector::default();
        let now = Instant::now();
        let with_loss = |id: &str, state, lost: Option<f64>| {
            let mut s = sample(id, state, 0, 0, 900_000);
            s.link.audio_fraction_lost_remote = lost;
            s
        };
        let out = c.collect(
            vec![
                with_loss("a", LinkState::Connected, Some(0.02)),
                with_loss("b", LinkState::Connected, Some(0.11)),
                with_loss("c", LinkState::Reconnecting, Some(0.5)),
                with_loss("d", LinkState::Connected, None),
            ],
            EncoderSnapshot::default(),
            now,
            (100_000, 2_000_000),
        );
        assert_eq!(out.audio_loss, Some(0.11));
        let none = c.collect(
            vec![with_loss("d", LinkState::Connected, None)],
            EncoderSnapshot::default(),
            now,
            (100_000, 2_000_000),
        );
        assert_eq!(none.audio_loss, None);
    }

    #[test]
    fn target_is_the_lowest_connected_estimate_clamped() {
        let mut c = StatsCollector::default();
        let now = Instant::now();
        let mut no_video = sample("c", LinkState::Connected, 0, 0, 50_000);
        no_video.video_negotiated = false;
        let out = c.collect(
            vec![
                sample("a", LinkState::Connected, 0, 0, 900_000),
                sample("b", LinkState::Connected, 0, 0, 700_000),
                sample("d", LinkState::Reconnecting, 0, 0, 10_000),
                no_video,
            ],
            EncoderSnapshot::default(),
            now,
            (100_000, 2_000_000),
        );
        assert_eq!(out.target_bps, Some(700_000));
        let low = c.collect(
            vec![sample("a", LinkState::Connected, 0, 0, 20_000)],
            EncoderSnapshot::default(),
            now,
            (100_000, 2_000_000),
        );
        assert_eq!(low.target_bps, Some(100_000), "clamped to the minimum");
        let none = c.collect(
            vec![sample("a", LinkState::Connecting, 0, 0, 900_000)],
            EncoderSnapshot::default(),
            now,
            (100_000, 2_000_000),
        );
        assert_eq!(none.target_bps, None);
    }

    /// The encoder gets the estimate minus what audio and retransmissions used over the last
    /// second, and never less than half of it.
    #[test]
    fn audio_and_retransmissions_come_off_the_video_target() {
        let mut c = StatsCollector::default();
        let t0 = Instant::now();
        let mut first = sample("a", LinkState::Connected, 0, 0, 1_000_000);
        first.link.audio_bytes_sent = 0;
        first.link.retransmitted_bytes_sent = 0;
        c.collect(
            vec![first],
            EncoderSnapshot::default(),
            t0,
            (100_000, 2_000_000),
        );
        // One second later: 4 000 audio bytes (32 kbit/s) and 12 500 resent bytes (100 kbit/s).
        let mut second = sample("a", LinkState::Connected, 0, 0, 1_000_000);
        second.link.audio_bytes_sent = 4_000;
        second.link.retransmitted_bytes_sent = 12_500;
        let out = c.collect(
            vec![second],
            EncoderSnapshot::default(),
            t0 + Duration::from_secs(1),
            (100_000, 2_000_000),
        );
        let expected = 1_000_000 - 32_000 - AUDIO_OVERHEAD_BPS as u32 - 100_000;
        let got = out.target_bps.unwrap();
        assert!(got.abs_diff(expected) <= 1, "{got} vs {expected}");
        assert_eq!(video_budget_bps(300_000, 40_000.0, 290_000.0), 150_000);
        assert_eq!(video_budget_bps(300_000, 0.0, 0.0), 300_000);
    }
}
