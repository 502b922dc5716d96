//! The call core's chat delivery: a message is delivered to each participant exactly once, in
//! order, or the sender is told it was not ([`crate::Problem::ChatNotDelivered`]).
//!
//! Contract:
//! - a message goes straight to the participants whose chat channel is *ready* and whose queue
//!   is empty; for everyone else in the room (channel not ready yet, closed, or no connection
//!   yet) it waits in that participant's [`Outbox`], and the queue is handed to the channel in
//!   one [`Action::SendChat`] when it becomes ready. Ready means open here **and** a message
//!   from the other side has arrived on it (every client sends its media state when its channel
//!   opens, and every 5 s): webrtc-rs 0.21.1 acknowledges and then drops a message that reaches
//!   a negotiated channel in the moment before its own side has finished opening it, so a chat
//!   sent as soon as our side opened was lost in about 1 of 10 calls set up under loss;
//! - a message handed to an open channel is never sent again: the channel is reliable and
//!   ordered (SCTP retransmits under loss), and its association survives an ICE restart. A
//!   message the link refused because the channel had closed goes back to the front of the queue
//!   ([`CallCore::chat_not_sent`]); any other refusal is reported;
//! - a participant who leaves with messages still queued, a queue older than
//!   [`CHAT_DELIVERY_TIMEOUT`] (checked every tick) and hanging up with messages queued are
//!   reported as [`Problem::ChatNotDelivered`], naming who did not get what;
//! - a message with nobody else in the room is not sent and not echoed:
//!   [`Problem::ChatNoRecipients`].

use std::time::{Instant, SystemTime};

use signaling_client::ParticipantId;

use super::outbox::{CHAT_DELIVERY_TIMEOUT, Outbox, Pending};
use super::{Action, CallCore};
use crate::api::EngineEvent;
use crate::reasons::Problem;

impl CallCore {
    /// Send a chat message to everyone in the room (and echo it to our own UI); see the module
    /// docs for what happens to it.
    pub(crate) fn send_chat(
        &mut self,
        text: String,
        me: &str,
        at: SystemTime,
        now: Instant,
    ) -> Vec<Action> {
        let Some(my_id) = self.my_id.clone() else {
            return vec![Action::Emit(EngineEvent::Error(Problem::NotInCall))];
        };
        let recipients = self.room_ids();
        if recipients.is_empty() {
            return vec![Action::Emit(EngineEvent::Error(
                Problem::ChatNoRecipients { text },
            ))];
        }
        let mut out = Vec::new();
        let mut dropped = Vec::new();
        for id in recipients {
            let open = self.peers.get(&id).is_some_and(|p| p.chat_ready());
            let outbox = self.outboxes.entry(id.clone()).or_default();
            if open && outbox.is_empty() {
                out.push(Action::SendChat {
                    id,
                    messages: vec![Pending {
                        text: text.clone(),
                        queued_at: now,
                    }],
                });
            } else if let Some(lost) = outbox.push(text.clone(), now) {
                dropped.push(self.undelivered(&id, &[lost], "too many messages waiting"));
            }
        }
        if !dropped.is_empty() {
            out.push(Action::Emit(EngineEvent::Error(
                Problem::ChatNotDelivered { to: dropped },
            )));
        }
        out.push(Action::Emit(EngineEvent::Chat {
            from: my_id,
            name: me.to_owned(),
            text,
            at,
        }));
        out
    }

    /// The chat channel to `id` opened: hand it everything queued for it, in order.
    pub(super) fn flush_outbox(&mut self, id: &ParticipantId) -> Vec<Action> {
        let messages = self
            .outboxes
            .get_mut(id)
            .map(Outbox::take_all)
            .unwrap_or_default();
        if messages.is_empty() {
            return Vec::new();
        }
        vec![Action::SendChat {
            id: id.clone(),
            messages,
        }]
    }

    /// [`Action::SendChat`] could not hand `messages` (the first refused one and everything
    /// after it) to the link of `id`. With `channel_closed` they wait for the channel to open
    /// again; otherwise (too large, link gone) they are reported with `detail`.
    pub(crate) fn chat_not_sent(
        &mut self,
        id: &ParticipantId,
        messages: Vec<Pending>,
        channel_closed: bool,
        detail: &str,
    ) -> Vec<Action> {
        if channel_closed && let Some(peer) = self.peers.get_mut(id) {
            peer.chat_open = false;
            peer.remote_spoke = false;
            self.outboxes
                .entry(id.clone())
                .or_default()
                .requeue_front(messages);
            return Vec::new();
        }
        vec![Action::Emit(EngineEvent::Error(
            Problem::ChatNotDelivered {
                to: vec![self.undelivered(id, &messages, detail)],
            },
        ))]
    }

    /// `id` left (or we are leaving): report what was still queued for it.
    pub(super) fn drop_outbox(&mut self, id: &ParticipantId, why: &str) -> Vec<Action> {
        let Some(mut outbox) = self.outboxes.remove(id) else {
            return Vec::new();
        };
        let lost = outbox.take_all();
        if lost.is_empty() {
            return Vec::new();
        }
        vec![Action::Emit(EngineEvent::Error(
            Problem::ChatNotDelivered {
                to: vec![self.undelivered(id, &lost, why)],
            },
        ))]
    }

    /// Gives up on messages that waited too long (called every tick).
    pub(super) fn expire_outboxes(&mut self, now: Instant) -> Vec<Action> {
        let mut ids: Vec<ParticipantId> = self.outboxes.keys().cloned().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut to = Vec::new();
        for id in ids {
            let expired = self
                .outboxes
                .get_mut(&id)
                .map(|o| o.expire(now, CHAT_DELIVERY_TIMEOUT))
                .unwrap_or_default();
            if !expired.is_empty() {
                let why = format!("no connection within {} s", CHAT_DELIVERY_TIMEOUT.as_secs());
                to.push(self.undelivered(&id, &expired, &why));
            }
        }
        if to.is_empty() {
            Vec::new()
        } else {
            vec![Action::Emit(EngineEvent::Error(
                Problem::ChatNotDelivered { to },
            ))]
        }
    }

    /// Everyone else in the room: known by name or with a connection (sorted).
    fn room_ids(&self) -> Vec<ParticipantId> {
        let mut ids: Vec<ParticipantId> = self
            .names
            .keys()
            .chain(self.peers.keys())
            .filter(|id| self.my_id.as_ref() != Some(*id))
            .cloned()
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup();
        ids
    }

    /// `"name: why (n messages)"`, one entry of [`Problem::ChatNotDelivered`].
    fn undelivered(&self, id: &ParticipantId, messages: &[Pending], why: &str) -> String {
        match messages {
            [one] => format!("{}: {why} (\"{}\")", self.name_of(id), one.text),
            many => format!("{}: {why} ({} messages)", self.name_of(id), many.len()),
        }
    }
}
