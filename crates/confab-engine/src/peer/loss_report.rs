//! An interceptor that reads what the remote receiver says about our audio: the "fraction lost"
//! of its RTCP reception report for our audio stream.
//!
//! webrtc-rs 0.21.1 keeps a `remote-inbound-rtp` accumulator but never feeds it inbound RTCP, so
//! the loss the far end reports is not in the stats report. [`ReceiverReportTap`] sits in the
//! chain below the keyframe forwarder (which swallows everything but PLI/FIR), learns our audio
//! SSRC when the local audio stream is bound, and records the `fraction_lost` (`n / 256`) of
//! every report block about it, from receiver reports and from sender reports (a peer that also
//! sends, e.g. Chromium, puts its blocks there). Everything passes through unchanged.
//!
//! [`ReportedLoss`] is the shared cell the link reads ([`ReportedLoss::audio_fraction_lost`]):
//! `None` until a first report arrives. The Opus encoder's FEC hint is fed from it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where the tap sits: above every built-in interceptor, below the keyframe forwarder.
pub const SLOT: Slot = Slot::Custom(13_500);

/// No SSRC / no report yet.
const NONE: u32 = u32::MAX;

/// The latest loss the remote reported for our audio; cloned into the tap and kept by the link.
#[derive(Debug, Clone)]
pub struct ReportedLoss {
    audio_ssrc: Arc<AtomicU32>,
    /// Latest `fraction_lost` (0..=255), or [`NONE`].
    fraction: Arc<AtomicU32>,
}

impl Default for ReportedLoss {
    fn default() -> Self {
        Self {
            audio_ssrc: Arc::new(AtomicU32::new(NONE)),
            fraction: Arc::new(AtomicU32::new(NONE)),
        }
    }
}

impl ReportedLoss {
    /// Fraction (0..=1) of our audio packets the remote reported lost in its latest report.
    pub fn audio_fraction_lost(&self) -> Option<f64> {
        let v = self.fraction.load(Ordering::Relaxed);
        (v != NONE).then(|| f64::from(v) / 256.0)
    }

    fn record(&self, blocks: &[ReceptionReport]) {
        let ssrc = self.audio_ssrc.load(Ordering::Relaxed);
        if let Some(block) = blocks.iter().find(|b| b.ssrc == ssrc && ssrc != NONE) {
            self.fraction
                .store(u32::from(block.fraction_lost), Ordering::Relaxed);
        }
    }
}

/// See the module docs.
pub struct ReceiverReportTap {
    loss: ReportedLoss,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl ReceiverReportTap {
    /// A tap recording into `loss`.
    pub fn new(loss: ReportedLoss) -> Self {
        Self {
            loss,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for ReceiverReportTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for p in packets {
                let any = p.as_any();
                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    self.loss.record(&rr.reports);
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    self.loss.record(&sr.reports);
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for ReceiverReportTap {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if info.mime_type.to_ascii_lowercase().starts_with("audio/") {
            self.loss.audio_ssrc.store(info.ssrc, Ordering::Relaxed);
        }
    }
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    fn rtcp(packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        }
    }

    fn block(ssrc: u32, fraction_lost: u8) -> ReceptionReport {
        ReceptionReport {
            ssrc,
            fraction_lost,
            ..ReceptionReport::default()
        }
    }

    #[test]
    fn records_the_loss_reported_for_our_audio_stream_only_and_passes_everything_on() {
        let loss = ReportedLoss::default();
        let mut tap = ReceiverReportTap::new(loss.clone());
        let stream = |ssrc, mime: &str| StreamInfo {
            ssrc,
            mime_type: mime.into(),
            ..StreamInfo::default()
        };
        tap.bind_local_stream(&stream(9, "video/H264"));
        tap.bind_local_stream(&stream(7, "audio/opus"));
        assert_eq!(loss.audio_fraction_lost(), None, "no report yet");

        let rr = ReceiverReport {
            ssrc: 1,
            reports: vec![block(9, 128), block(7, 26)],
            ..ReceiverReport::default()
        };
        assert!(tap.handle_read(rtcp(vec![Box::new(rr)])).is_ok());
        assert!(tap.poll_read().is_some(), "the report goes on up the chain");
        assert_eq!(loss.audio_fraction_lost(), Some(26.0 / 256.0));

        // A sending peer reports in its sender reports; a report about video alone changes
        // nothing.
        let sr = SenderReport {
            ssrc: 1,
            reports: vec![block(7, 64)],
            ..SenderReport::default()
        };
        let video_only = ReceiverReport {
            ssrc: 1,
            reports: vec![block(9, 200)],
            ..ReceiverReport::default()
        };
        assert!(
            tap.handle_read(rtcp(vec![Box::new(sr), Box::new(video_only)]))
                .is_ok()
        );
        assert_eq!(loss.audio_fraction_lost(), Some(0.25));
        assert!(tap.poll_read().is_some());
        assert!(tap.poll_read().is_none());
    }
}
