//! Turning a webrtc-rs stats report into [`PeerStats`].
//!
//! Which fields of the 0.21.1 report are trustworthy (checked in a probe, see the crate notes):
//! the selected candidate pair's RTT (from STUN consent checks), inbound/outbound packet and byte
//! counters, inbound loss and jitter (refreshed about once a second, when a receiver report is
//! generated; jitter is in RTP clock units and converted here), and the inbound `nack_count` /
//! `pli_count` (what *we* asked for), and the retransmission counters, which count RTX packets
//! only (a retransmission on the media SSRC, to a peer without RTX, is not told apart). Every `remote-inbound-rtp` field and the outbound
//! PLI/NACK/FIR counters are never filled in by the library, so keyframe requests received are
//! counted by our own RTCP path instead.

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};

use super::PeerStats;
use super::codecs::{AUDIO_CLOCK_RATE, VIDEO_CLOCK_RATE};
use crate::api::LocalCandidates;
use rtc::peer_connection::transport::RTCIceCandidateType;

/// Builds [`PeerStats`] from `report` plus the counters the library does not keep.
pub fn from_report(
    report: &RTCStatsReport,
    keyframe_requests_received: u64,
    bandwidth_estimate_bps: u64,
) -> PeerStats {
    let mut out = PeerStats {
        keyframe_requests_received,
        bandwidth_estimate_bps,
        ..PeerStats::default()
    };

    if let Some(transport) = report.transport()
        && let Some(RTCStatsReportEntry::IceCandidatePair(pair)) =
            report.get(&transport.selected_candidate_pair_id)
    {
        // The library reports 0.0 until the first consent check has completed.
        if pair.current_round_trip_time > 0.0 {
            out.rtt_ms = Some(pair.current_round_trip_time * 1000.0);
        }
        out.candidate_type = candidate_type(report, &pair.local_candidate_id, true);
        out.remote_candidate_type = candidate_type(report, &pair.remote_candidate_id, false);
    }

    out.local_candidates = local_candidates(report);

    for inbound in report.inbound_rtp_streams() {
        let received = &inbound.received_rtp_stream_stats;
        match received.rtp_stream_stats.kind {
            RtpCodecKind::Video => {
                out.video_packets_lost += received.packets_lost;
                out.video_jitter_ms = rtp_units_to_ms(received.jitter, VIDEO_CLOCK_RATE);
                out.video_bytes_received += inbound.bytes_received;
                out.video_packets_received += received.packets_received;
                out.nacks_sent += u64::from(inbound.nack_count);
                out.plis_sent += u64::from(inbound.pli_count);
                out.retransmitted_packets_received += inbound.retransmitted_packets_received;
            }
            RtpCodecKind::Audio => {
                out.audio_packets_lost += received.packets_lost;
                out.audio_jitter_ms = rtp_units_to_ms(received.jitter, AUDIO_CLOCK_RATE);
                out.audio_bytes_received += inbound.bytes_received;
                out.nacks_sent += u64::from(inbound.nack_count);
            }
            _ => {}
        }
    }

    for outbound in report.outbound_rtp_streams() {
        let sent = &outbound.sent_rtp_stream_stats;
        match sent.rtp_stream_stats.kind {
            RtpCodecKind::Video => {
                out.video_bytes_sent += sent.bytes_sent;
                out.video_packets_sent += sent.packets_sent;
                out.retransmitted_packets_sent += outbound.retransmitted_packets_sent;
            }
            RtpCodecKind::Audio => out.audio_bytes_sent += sent.bytes_sent,
            _ => {}
        }
    }
    out
}

/// The type of the candidate `id` names. In 0.21.1 the pair refers to candidates by their bare
/// ICE id while the candidate entries are keyed `RTCLocalIceCandidate_<id>` /
/// `RTCRemoteIceCandidate_<id>`, so both spellings are tried.
fn candidate_type(report: &RTCStatsReport, id: &str, local: bool) -> Option<String> {
    let prefixed = if local {
        format!("RTCLocalIceCandidate_{id}")
    } else {
        format!("RTCRemoteIceCandidate_{id}")
    };
    [id, prefixed.as_str()]
        .into_iter()
        .find_map(|key| match report.get(key) {
            Some(RTCStatsReportEntry::LocalCandidate(c)) if local => Some(c),
            Some(RTCStatsReportEntry::RemoteCandidate(c)) if !local => Some(c),
            _ => None,
        })
        .map(|c| c.candidate_type.to_string())
}

/// The local candidates in `report`, counted by kind, with the first public and relay address.
fn local_candidates(report: &RTCStatsReport) -> LocalCandidates {
    let mut out = LocalCandidates::default();
    for entry in report.iter() {
        let RTCStatsReportEntry::LocalCandidate(c) = entry else {
            continue;
        };
        let address = c.address.as_deref().map(|a| format!("{a}:{}", c.port));
        match c.candidate_type {
            RTCIceCandidateType::Host => out.host += 1,
            RTCIceCandidateType::Srflx => {
                out.srflx += 1;
                if out.public_address.is_none() {
                    out.public_address = address;
                }
            }
            RTCIceCandidateType::Relay => {
                out.relay += 1;
                if out.relay_address.is_none() {
                    out.relay_address = address.map(|a| {
                        if c.url.is_empty() {
                            a
                        } else {
                            format!("{a} ({})", c.url)
                        }
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn rtp_units_to_ms(jitter: f64, clock_rate: u32) -> f64 {
    jitter * 1000.0 / f64::from(clock_rate)
}
