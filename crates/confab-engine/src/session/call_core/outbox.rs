//! Chat messages waiting for one participant's data channel: [`Outbox`].
//!
//! Contract: messages leave in the order they were queued, each exactly once: [`Outbox::take_all`]
//! empties the queue (the core hands them to the channel, which is reliable and ordered, and an
//! SCTP association survives ICE restarts, so nothing is ever re-sent from here), a message
//! that could not be handed over goes back to the *front* with [`Outbox::requeue_front`], and
//! [`Outbox::expire`] gives up on those older than the caller's deadline. No clock of its own:
//! time is an argument.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a chat message may wait for a participant's channel to open before the sender is
/// told it was not delivered. Longer than an ICE restart with its retries (5 s apart), shorter
/// than anyone would wait for a reply.
pub(crate) const CHAT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Most messages one participant's queue holds; beyond that the oldest is given up on (and
/// reported), so a participant whose channel never opens cannot grow it without bound.
pub(crate) const OUTBOX_CAPACITY: usize = 256;

/// One queued chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// What was typed.
    pub(crate) text: String,
    /// When it was queued (the first time).
    pub(crate) queued_at: Instant,
}

/// The queue of one participant (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Pending>,
}

impl Outbox {
    /// Queues `text` behind what is already waiting; returns a message given up on to make
    /// room, if the queue was full.
    pub(crate) fn push(&mut self, text: String, now: Instant) -> Option<Pending> {
        let dropped = (self.queue.len() >= OUTBOX_CAPACITY)
            .then(|| self.queue.pop_front())
            .flatten();
        self.queue.push_back(Pending {
            text,
            queued_at: now,
        });
        dropped
    }

    /// Everything waiting, oldest first; the queue is empty afterwards.
    pub(crate) fn take_all(&mut self) -> Vec<Pending> {
        self.queue.drain(..).collect()
    }

    /// Puts messages that could not be handed over back in front, in their order.
    pub(crate) fn requeue_front(&mut self, messages: Vec<Pending>) {
        for m in messages.into_iter().rev() {
            self.queue.push_front(m);
        }
    }

    /// Removes and returns the messages queued more than `timeout` before `now`.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Pending> {
        let mut expired = Vec::new();
        while self
            .queue
            .front()
            .is_some_and(|m| now.saturating_duration_since(m.queued_at) > timeout)
        {
            expired.extend(self.queue.pop_front());
        }
        expired
    }

    /// Nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many messages are waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_requeues_in_front_and_expires_the_oldest() {
        let t0 = Instant::now();
        let mut out = Outbox::default();
        assert!(out.push("a".into(), t0).is_none());
        out.push("b".into(), t0 + Duration::from_secs(1));
        out.push("c".into(), t0 + Duration::from_secs(2));
        let mut all = out.take_all();
        assert!(out.is_empty());
        let rest = all.split_off(1);
        out.requeue_front(rest);
        out.push("d".into(), t0 + Duration::from_secs(3));
        let texts: Vec<String> = out.take_all().into_iter().map(|m| m.text).collect();
        assert_eq!(texts, ["b", "c", "d"]);

        out.push("old".into(), t0);
        out.push("new".into(), t0 + Duration::from_secs(15));
        let expired = out.expire(t0 + Duration::from_secs(21), CHAT_DELIVERY_TIMEOUT);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].text, "old");
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_full_queue_gives_up_on_its_oldest_message() {
        let t0 = Instant::now();
        let mut out = Outbox::default();
        for n in 0..OUTBOX_CAPACITY {
            assert!(out.push(n.to_string(), t0).is_none());
        }
        let dropped = out.push("one more".into(), t0).unwrap();
        assert_eq!(dropped.text, "0");
        assert_eq!(out.len(), OUTBOX_CAPACITY);
    }
}
