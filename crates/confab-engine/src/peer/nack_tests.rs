use bytes::Bytes;
use rtc::interceptor::RTCPFeedback;
use rtc::rtp::Header;

use super::*;
use crate::peer::test_packets::tagged;

const MEDIA: u32 = 0x1000;
const RTX: u32 = 0x2000;

fn info(ssrc: u32, rtx: Option<u32>) -> StreamInfo {
    StreamInfo {
        ssrc,
        ssrc_rtx: rtx,
        payload_type: 102,
        payload_type_rtx: rtx.map(|_| 103),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: String::new(),
        }],
        ..Default::default()
    }
}

fn generator() -> NackGenerator {
    let mut g = NackGenerator::new(7);
    // As the library binds them: the primary with its repair flow, then the repair flow.
    g.bind_remote_stream(&info(MEDIA, Some(RTX)));
    g.bind_remote_stream(&info(RTX, None));
    g
}

fn media(now: Instant, ssrc: u32, seq: u16, payload: &[u8]) -> TaggedPacket {
    tagged(
        now,
        Packet::Rtp(rtc::rtp::Packet {
            header: Header {
                version: 2,
                ssrc,
                sequence_number: seq,
                payload_type: 102,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        }),
    )
}

fn rtx(now: Instant, rtx_seq: u16, original: u16) -> TaggedPacket {
    let mut payload = original.to_be_bytes().to_vec();
    payload.extend_from_slice(&[1, 2, 3]);
    media(now, RTX, rtx_seq, &payload)
}

fn feed(g: &mut NackGenerator, msg: TaggedPacket) {
    g.handle_read(msg).unwrap();
    while g.poll_read().is_some() {}
}

/// Runs the timer at `now` and returns the sequence numbers NACKed, per media SSRC.
fn tick(g: &mut NackGenerator, now: Instant) -> Vec<(u32, Vec<u16>)> {
    g.handle_timeout(now).unwrap();
    let mut out = Vec::new();
    while let Some(msg) = g.poll_write() {
        let Packet::Rtcp(packets) = msg.message.packet else {
            panic!("only RTCP expected");
        };
        for p in packets {
            let nack = p
                .as_any()
                .downcast_ref::<TransportLayerNack>()
                .expect("a NACK");
            let seqs = nack
                .nacks
                .iter()
                .flat_map(|pair| pair.packet_list())
                .collect();
            out.push((nack.media_ssrc, seqs));
        }
    }
    out
}

#[test]
fn a_hole_is_nacked_after_the_reorder_grace() {
    let mut g = generator();
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 10, b"a"));
    feed(&mut g, media(t, MEDIA, 13, b"b"));
    assert!(tick(&mut g, t).is_empty(), "not before the grace");
    let due = g.poll_timeout().expect("a deadline");
    assert_eq!(due, t + REORDER_GRACE);
    assert_eq!(tick(&mut g, due), vec![(MEDIA, vec![11, 12])]);
}

#[test]
fn a_repair_on_the_rtx_ssrc_closes_the_hole() {
    let cell = RepairTimeCell::default();
    let mut g = NackGenerator::with_repair_cell(7, cell.clone());
    g.bind_remote_stream(&info(MEDIA, Some(RTX)));
    g.bind_remote_stream(&info(RTX, None));
    assert_eq!(cell.get(), None);
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 10, b"a"));
    feed(&mut g, media(t, MEDIA, 12, b"b"));
    let t1 = t + REORDER_GRACE;
    assert_eq!(tick(&mut g, t1), vec![(MEDIA, vec![11])]);
    feed(&mut g, rtx(t1 + Duration::from_millis(10), 0, 11));
    assert!(g.poll_timeout().is_none(), "nothing left to ask for");
    assert!(tick(&mut g, t1 + Duration::from_secs(1)).is_empty());
    // The repair time was measured: the next hole is re-asked for sooner than the default,
    // and the link's frame assembler sees it.
    assert!(g.resend_interval() < INITIAL_RESEND);
    assert_eq!(cell.get(), Some(Duration::from_millis(10)));
}

#[test]
fn a_lost_retransmission_is_asked_for_again_then_given_up() {
    let mut g = generator();
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 1, b"a"));
    feed(&mut g, media(t, MEDIA, 3, b"b"));
    let mut now = t + REORDER_GRACE;
    let mut sends = 0;
    while let Some(due) = g.poll_timeout() {
        now = now.max(due);
        for (_, seqs) in tick(&mut g, now) {
            assert_eq!(seqs, vec![2]);
            sends += 1;
        }
        assert!(now < t + MAX_AGE + MAX_RESEND, "never gives up");
    }
    // Re-asked about every resend interval, within both limits.
    assert!(
        (2..=usize::from(MAX_SENDS)).contains(&sends),
        "{sends} NACKs"
    );
}

#[test]
fn the_rtx_flow_itself_is_never_nacked() {
    let mut g = generator();
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 1, b"a"));
    // RTX sequence numbers jump (only some packets are repaired); they name originals 1 and 1.
    feed(&mut g, rtx(t, 5, 1));
    feed(&mut g, rtx(t, 9, 1));
    assert!(tick(&mut g, t + Duration::from_secs(2)).is_empty());
}

#[test]
fn a_jump_after_an_outage_is_not_repaired() {
    let mut g = generator();
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 100, b"a"));
    feed(&mut g, media(t, MEDIA, 100 + MAX_GAP as u16 + 50, b"b"));
    assert!(tick(&mut g, t + Duration::from_millis(50)).is_empty());
}

#[test]
fn sequence_numbers_wrap() {
    let mut g = generator();
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 65_534, b"a"));
    feed(&mut g, media(t, MEDIA, 1, b"b"));
    assert_eq!(
        tick(&mut g, t + REORDER_GRACE),
        vec![(MEDIA, vec![65_535, 0])]
    );
}

#[test]
fn streams_without_generic_nack_are_ignored() {
    let mut g = NackGenerator::new(7);
    g.bind_remote_stream(&StreamInfo {
        ssrc: MEDIA,
        ..Default::default()
    });
    let t = Instant::now();
    feed(&mut g, media(t, MEDIA, 1, b"a"));
    feed(&mut g, media(t, MEDIA, 5, b"b"));
    assert!(tick(&mut g, t + Duration::from_secs(1)).is_empty());
}
