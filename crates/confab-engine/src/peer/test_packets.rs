//! Test helper shared by the interceptor tests in this module: packets as the chain hands them.

use std::time::Instant;

use rtc::interceptor::{AttributedPacket, Packet, TaggedPacket};
use rtc::shared::TransportContext;

/// `packet` as the interceptor chain carries it at `now`, with no attributes.
pub(super) fn tagged(now: Instant, packet: Packet) -> TaggedPacket {
    TaggedPacket {
        now,
        transport: TransportContext::default(),
        message: AttributedPacket::new(packet),
    }
}
