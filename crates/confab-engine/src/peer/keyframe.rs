//! An interceptor that lets inbound keyframe requests (RTCP PLI and FIR) reach the application.
//!
//! By default the interceptor chain consumes all inbound RTCP. [`KeyframeRequestForwarder`]
//! sits at the application end of the chain ([`SLOT`], above every built-in interceptor, so
//! NACK/TWCC/report handling still sees every packet first). It keeps only PLI and FIR packets
//! from each compound RTCP packet and tags them `DeliverToApplication`; the connection then
//! routes them to the local track whose SSRC they name, where `TrackLocal::poll` returns them.
//! All other RTCP is swallowed here, and RTP and everything outbound pass through untouched.
//!
//! Contract for the owner: once this is installed, every local track's `poll()` must be
//! drained continuously, or its 256-event queue fills and further requests are dropped.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where the forwarder sits: above `JitterBuffer` (13 000), the highest built-in slot.
pub const SLOT: Slot = Slot::Custom(14_000);

/// True for the RTCP packet types that ask a sender for a new keyframe.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// See the module docs.
#[derive(Default)]
pub struct KeyframeRequestForwarder {
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let keep: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if keep.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
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

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
