//! The priority pacer driven with hand-made packets and instants: release order across classes,
//! the rate it follows, refusal when a class is full, RTCP unpaced.

use std::time::Duration;

use bytes::Bytes;
use rtc::interceptor::AttributedPacket;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Header;

use super::*;
use crate::peer::test_packets::tagged;

const VIDEO: u32 = 0x1000;
const VIDEO_RTX: u32 = 0x2000;
const AUDIO: u32 = 0x3000;
/// 1000 payload bytes + 12 header bytes: 8096 bits on the budget.
const PAYLOAD: usize = 1000;

/// A pacer at `bps` with our video (RTX negotiated) and audio streams bound.
fn pacer(bps: f64, video_queue: usize) -> (PriorityPacer, PacerCounters) {
    let counters = PacerCounters::default();
    let mut p = PriorityPacer::new(bps, video_queue, counters.clone());
    p.bind_local_stream(&StreamInfo {
        ssrc: VIDEO,
        ssrc_rtx: Some(VIDEO_RTX),
        payload_type: 102,
        payload_type_rtx: Some(103),
        mime_type: "video/H264".to_owned(),
        ..Default::default()
    });
    p.bind_local_stream(&StreamInfo {
        ssrc: AUDIO,
        payload_type: 111,
        mime_type: "audio/opus".to_owned(),
        ..Default::default()
    });
    (p, counters)
}

fn rtp(ssrc: u32, seq: u16) -> Packet {
    Packet::Rtp(rtc::rtp::Packet {
        header: Header {
            version: 2,
            ssrc,
            sequence_number: seq,
            ..Default::default()
        },
        payload: Bytes::from(vec![0u8; PAYLOAD]),
    })
}

fn write(p: &mut PriorityPacer, now: Instant, packet: Packet) {
    p.handle_write(tagged(now, packet)).unwrap();
}

/// Queues video packets `seqs` at `now`.
fn write_video(p: &mut PriorityPacer, now: Instant, seqs: std::ops::Range<u16>) {
    for seq in seqs {
        write(p, now, rtp(VIDEO, seq));
    }
}

/// Runs the pacer's timers from `from` for `span`, returning `(ssrc, seq, released at)` of what
/// left, in order.
fn run(p: &mut PriorityPacer, from: Instant, span: Duration) -> Vec<(u32, u16, Duration)> {
    let mut out = Vec::new();
    let end = from + span;
    let mut now = from;
    loop {
        p.handle_timeout(now).unwrap();
        while let Some(msg) = p.poll_write() {
            if let Packet::Rtp(r) = &msg.message.packet {
                out.push((r.header.ssrc, r.header.sequence_number, msg.now - from));
            }
        }
        match p.poll_timeout() {
            // A deadline that float rounding puts at `now` is retried a microsecond later,
            // as a real clock would.
            Some(next) if next <= end => now = next.max(now + Duration::from_micros(1)),
            _ => break,
        }
    }
    out
}

#[test]
fn audio_and_repairs_leave_before_queued_video() {
    // 810 kbit/s: a 81 kbit burst, ten of these packets; a backlog of 40 video packets.
    let (mut p, _) = pacer(810_000.0, 256);
    let t = Instant::now();
    write_video(&mut p, t, 0..40);
    let first = run(&mut p, t, Duration::ZERO);
    assert!(
        !first.is_empty() && first.len() < 40,
        "a burst leaves at once, the rest waits: {}",
        first.len()
    );
    // A retransmission on the RTX SSRC, one the responder tagged, and audio, all behind it.
    let later = t + Duration::from_millis(1);
    write(&mut p, later, rtp(VIDEO_RTX, 500));
    p.handle_write(TaggedPacket {
        now: later,
        transport: Default::default(),
        message: AttributedPacket::new(rtp(VIDEO, 3)).with(Attribute::Retransmission),
    })
    .unwrap();
    write(&mut p, later, rtp(AUDIO, 7));
    let rest = run(&mut p, later, Duration::from_secs(2));
    let order: Vec<(u32, u16)> = rest.iter().map(|(s, q, _)| (*s, *q)).collect();
    assert_eq!(
        &order[..3],
        &[(AUDIO, 7), (VIDEO_RTX, 500), (VIDEO, 3)],
        "audio, then the repairs in their order, then video"
    );
    let video: Vec<u16> = order[3..].iter().map(|(_, q)| *q).collect();
    let expected: Vec<u16> = (first.len() as u16..40).collect();
    assert_eq!(video, expected, "video keeps its own order");
}

#[test]
fn releases_at_the_rate_the_congestion_controller_attaches_to_feedback() {
    let (mut p, _) = pacer(810_000.0, 256);
    let t = Instant::now();
    // Drain the initial burst so only the rate counts.
    write_video(&mut p, t, 0..10);
    run(&mut p, t, Duration::ZERO);
    let feedback = AttributedPacket::new(Packet::Rtcp(vec![Box::new(PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: VIDEO,
    })]))
    .with(Attribute::TargetBitrateChanged {
        bits_per_second: 80_960.0,
    });
    p.handle_read(TaggedPacket {
        now: t,
        transport: Default::default(),
        message: feedback,
    })
    .unwrap();
    assert!(p.poll_read().is_some(), "feedback goes on up the chain");
    assert_eq!(p.rate(), 80_960.0);
    write_video(&mut p, t, 10..30);
    // At 80 960 bit/s one 8096-bit packet leaves every 100 ms (after the 12 kbit minimum burst).
    let released = run(&mut p, t, Duration::from_millis(1000));
    assert!(
        (9..=12).contains(&released.len()),
        "about ten packets in a second at the new rate, got {}",
        released.len()
    );
}

#[test]
fn a_full_class_refuses_arrivals_and_counts_them_without_touching_the_others() {
    let (mut p, counters) = pacer(8_000.0, 4);
    let t = Instant::now();
    write_video(&mut p, t, 0..10);
    write(&mut p, t, rtp(AUDIO, 1));
    assert_eq!(
        counters.refused(),
        6,
        "four video packets held, six refused"
    );
    let released = run(&mut p, t, Duration::from_secs(30));
    let audio = released.iter().filter(|(s, _, _)| *s == AUDIO).count();
    let video: Vec<u16> = released
        .iter()
        .filter(|(s, _, _)| *s == VIDEO)
        .map(|(_, q, _)| *q)
        .collect();
    assert_eq!(audio, 1, "audio has its own queue");
    assert_eq!(video, vec![0, 1, 2, 3], "the oldest are kept");
}

#[test]
fn rtcp_is_not_paced() {
    let (mut p, _) = pacer(8_000.0, 256);
    let t = Instant::now();
    write_video(&mut p, t, 0..5);
    write(
        &mut p,
        t,
        Packet::Rtcp(vec![Box::new(PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        })]),
    );
    let msg = p.poll_write().expect("RTCP passes at once");
    assert!(matches!(msg.message.packet, Packet::Rtcp(_)));
}
