//! The guard in front of the NACK responder, driven with hand-made packets and instants: what is
//! resent, what is refused and why, and the RTT it measures from report blocks.

use bytes::Bytes;
use rtc::interceptor::RTCPFeedback;
use rtc::rtp::Header;

use super::*;
use crate::peer::test_packets::tagged;

const MEDIA: u32 = 0x1000;
const RTX: u32 = 0x2000;

/// A guard whose estimate is `estimate_bps`, with our video stream (RTX negotiated) bound.
fn guard(estimate_bps: f64) -> (RetransmissionGuard, RtxCounters) {
    let counters = RtxCounters::default();
    let mut g = RetransmissionGuard::new(1024, EstimateCell::new(estimate_bps), counters.clone());
    g.bind_local_stream(&StreamInfo {
        ssrc: MEDIA,
        ssrc_rtx: Some(RTX),
        payload_type: 102,
        payload_type_rtx: Some(103),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: String::new(),
        }],
        ..Default::default()
    });
    (g, counters)
}

/// Sends packets `seqs` of `payload` bytes each and drains them from the write leg.
fn send(g: &mut RetransmissionGuard, now: Instant, seqs: std::ops::Range<u16>, payload: usize) {
    for seq in seqs {
        let packet = rtc::rtp::Packet {
            header: Header {
                version: 2,
                ssrc: MEDIA,
                sequence_number: seq,
                payload_type: 102,
                ..Default::default()
            },
            payload: Bytes::from(vec![0u8; payload]),
        };
        g.handle_write(tagged(now, Packet::Rtp(packet))).unwrap();
    }
    while g.poll_write().is_some() {}
}

/// Reads a NACK for `seqs` and returns the original sequence numbers the responder resent.
fn nack(g: &mut RetransmissionGuard, now: Instant, seqs: &[u16]) -> Vec<u16> {
    let nack = TransportLayerNack {
        sender_ssrc: 7,
        media_ssrc: MEDIA,
        nacks: nack_pairs_from_sequence_numbers(seqs),
    };
    g.handle_read(tagged(now, Packet::Rtcp(vec![Box::new(nack)])))
        .unwrap();
    assert!(g.poll_read().is_some(), "the NACK goes on up the chain");
    let mut resent = Vec::new();
    while let Some(out) = g.poll_write() {
        let Packet::Rtp(rtp) = out.message.packet else {
            panic!("only retransmissions come out");
        };
        assert_eq!(rtp.header.ssrc, RTX);
        resent.push(u16::from_be_bytes([rtp.payload[0], rtp.payload[1]]));
    }
    resent
}

#[test]
fn a_packet_is_resent_at_most_once_per_round_trip() {
    let (mut g, counters) = guard(2_000_000.0);
    let t0 = Instant::now();
    send(&mut g, t0, 0..20, 1000);
    assert_eq!(nack(&mut g, t0, &[3, 5]), vec![3, 5]);
    // Asked again before a round trip has passed (no RTT measured: the default applies): the
    // first copies may still be on their way.
    let early = t0 + DEFAULT_RTT / 2;
    assert_eq!(nack(&mut g, early, &[3, 5, 6]), vec![6]);
    assert_eq!(counters.refused_repeat(), 2);
    // A round trip later a request means the copy was lost too.
    assert_eq!(nack(&mut g, t0 + DEFAULT_RTT, &[3]), vec![3]);
    assert_eq!(counters.bytes_resent(), 4 * 1012);
}

#[test]
fn retransmissions_stay_within_their_share_of_the_estimate() {
    // 100 kbit/s: the budget is 50 kbit/s, 12.5 kbit deep — one 1000-byte packet at a time.
    let (mut g, counters) = guard(100_000.0);
    let t0 = Instant::now();
    send(&mut g, t0, 0..100, 1000);
    let all: Vec<u16> = (0..40).collect();
    let first = nack(&mut g, t0, &all);
    assert_eq!(first, vec![0], "one packet fits the bucket");
    assert_eq!(counters.refused_budget(), 39);
    // A second later 50 kbit more may go (the bucket holds at most 12.5 kbit of it).
    let later: Vec<u16> = (40..80).collect();
    let second = nack(&mut g, t0 + Duration::from_secs(1), &later);
    assert_eq!(second, vec![40]);
    // Over time the rate, not the depth, is the limit: 20 s of requests every 100 ms resend
    // about 50 kbit/s.
    let mut resent_bits = 0usize;
    for step in 1..=200u32 {
        let now = t0 + Duration::from_secs(1) + Duration::from_millis(100) * step;
        let seqs: Vec<u16> = (0..100).collect();
        resent_bits += nack(&mut g, now, &seqs).len() * 1012 * 8;
    }
    let rate = resent_bits as f64 / 20.0;
    assert!(
        (30_000.0..=55_000.0).contains(&rate),
        "{rate} bit/s resent for a 50 kbit/s budget"
    );
}

#[test]
fn the_round_trip_comes_from_report_blocks_about_our_sender_reports() {
    let (mut g, counters) = guard(2_000_000.0);
    let t0 = Instant::now();
    let ntp: u64 = 0x1234_5678_9abc_def0;
    let sr = SenderReport {
        ssrc: MEDIA,
        ntp_time: ntp,
        ..SenderReport::default()
    };
    g.handle_write(tagged(t0, Packet::Rtcp(vec![Box::new(sr)])))
        .unwrap();
    assert!(g.poll_write().is_some(), "the report goes on to the wire");
    // Answered 80 ms later by a block that says the remote held it for 20 ms: 60 ms RTT.
    let rr = ReceiverReport {
        ssrc: 9,
        reports: vec![ReceptionReport {
            ssrc: MEDIA,
            last_sender_report: (ntp >> 16) as u32,
            delay: 65_536 / 50,
            ..ReceptionReport::default()
        }],
        ..ReceiverReport::default()
    };
    g.handle_read(tagged(
        t0 + Duration::from_millis(80),
        Packet::Rtcp(vec![Box::new(rr)]),
    ))
    .unwrap();
    assert!(g.poll_read().is_some());
    let rtt = g.rtt().expect("measured");
    assert!(
        rtt.abs_diff(Duration::from_millis(60)) < Duration::from_millis(1),
        "{rtt:?}"
    );
    // And the repeat spacing follows it: 70 ms after a resend is past a 60 ms round trip.
    send(&mut g, t0, 0..4, 100);
    assert_eq!(nack(&mut g, t0, &[1]), vec![1]);
    assert!(nack(&mut g, t0 + Duration::from_millis(30), &[1]).is_empty());
    assert_eq!(nack(&mut g, t0 + Duration::from_millis(70), &[1]), vec![1]);
    assert_eq!(counters.refused_repeat(), 1);
}

#[test]
fn requests_for_unknown_streams_or_packets_resend_nothing() {
    let (mut g, counters) = guard(2_000_000.0);
    let t0 = Instant::now();
    send(&mut g, t0, 0..4, 100);
    // Never sent (or long since overwritten in the history).
    assert!(nack(&mut g, t0, &[500, 501]).is_empty());
    // About a stream we do not send.
    let other = TransportLayerNack {
        sender_ssrc: 7,
        media_ssrc: 0xdead,
        nacks: nack_pairs_from_sequence_numbers(&[1]),
    };
    g.handle_read(tagged(t0, Packet::Rtcp(vec![Box::new(other)])))
        .unwrap();
    assert!(g.poll_read().is_some());
    assert!(g.poll_write().is_none());
    assert_eq!(counters.bytes_resent(), 0);
    assert_eq!(counters.refused_repeat() + counters.refused_budget(), 0);
}
