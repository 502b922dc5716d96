//! A bounded channel that drops the oldest item instead of blocking the producer or growing.
//!
//! Real-time media wants the freshest frame: a slow encoder must not make the camera thread block
//! (which would stall capture) nor let a queue grow (which adds latency). [`channel`] wraps a
//! bounded `crossbeam-channel`; when it is full, [`DropOldestSender::send`] takes the oldest item
//! out through a receiver handle it keeps, then retries. (crossbeam-channel 0.5.17 has no
//! `force_send`, so eviction is done this way.) Dropped items are counted.
//!
//! The receiving side, [`DropOldestReceiver`], derefs to a [`crossbeam_channel::Receiver`], so
//! consumers can `recv`, `try_recv` or `select!` on it. When every receiver is dropped, `send`
//! reports [`SendOutcome::Disconnected`] so the producer can stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Producer half of a drop-oldest channel.
#[derive(Debug)]
pub struct DropOldestSender<T> {
    tx: Sender<T>,
    evict: Receiver<T>,
    dropped: Arc<AtomicU64>,
    receivers: Weak<()>,
}

/// Consumer half of a drop-oldest channel; derefs to the underlying crossbeam receiver.
#[derive(Debug)]
pub struct DropOldestReceiver<T> {
    rx: Receiver<T>,
    // Counted by the sender to detect that every consumer is gone (its own eviction handle keeps
    // the crossbeam channel connected).
    _alive: Arc<()>,
}

impl<T> Clone for DropOldestReceiver<T> {
    fn clone(&self) -> Self {
        Self {
            rx: self.rx.clone(),
            _alive: Arc::clone(&self._alive),
        }
    }
}

impl<T> std::ops::Deref for DropOldestReceiver<T> {
    type Target = Receiver<T>;
    fn deref(&self) -> &Receiver<T> {
        &self.rx
    }
}

impl<T> Clone for DropOldestSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            evict: self.evict.clone(),
            dropped: Arc::clone(&self.dropped),
            receivers: Weak::clone(&self.receivers),
        }
    }
}

/// Outcome of [`DropOldestSender::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued without dropping anything.
    Queued,
    /// Queued after dropping this many older items.
    QueuedDroppedOldest(u32),
    /// Every consumer is gone; the item was discarded.
    Disconnected,
}

/// Creates a channel holding at most `capacity` items (at least 1).
#[must_use]
pub fn channel<T>(capacity: usize) -> (DropOldestSender<T>, DropOldestReceiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let receivers = Arc::new(());
    (
        DropOldestSender {
            tx,
            evict: rx.clone(),
            dropped: Arc::new(AtomicU64::new(0)),
            receivers: Arc::downgrade(&receivers),
        },
        DropOldestReceiver {
            rx,
            _alive: receivers,
        },
    )
}

impl<T> DropOldestSender<T> {
    /// Sends `item`, evicting the oldest queued items if the channel is full. Never blocks.
    pub fn send(&self, item: T) -> SendOutcome {
        if self.is_disconnected() {
            return SendOutcome::Disconnected;
        }
        let mut item = item;
        let mut dropped = 0u32;
        loop {
            match self.tx.try_send(item) {
                Ok(()) if dropped == 0 => return SendOutcome::Queued,
                Ok(()) => return SendOutcome::QueuedDroppedOldest(dropped),
                Err(TrySendError::Disconnected(_)) => return SendOutcome::Disconnected,
                Err(TrySendError::Full(back)) => {
                    item = back;
                    // The consumer may have taken it meanwhile; either way there is room now.
                    if self.evict.try_recv().is_ok() {
                        dropped += 1;
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// True when every [`DropOldestReceiver`] has been dropped.
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.receivers.strong_count() == 0
    }

    /// Total items dropped by this channel so far.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A handle that reads the drop count without keeping the channel open.
    #[must_use]
    pub fn drop_counter(&self) -> DropCounter {
        DropCounter(Arc::clone(&self.dropped))
    }
}

/// Reads how many items a drop-oldest channel has dropped.
#[derive(Debug, Clone, Default)]
pub struct DropCounter(Arc<AtomicU64>);

impl DropCounter {
    /// Total items dropped so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newest_items() {
        let (tx, rx) = channel(2);
        assert_eq!(tx.send(1), SendOutcome::Queued);
        assert_eq!(tx.send(2), SendOutcome::Queued);
        assert_eq!(tx.send(3), SendOutcome::QueuedDroppedOldest(1));
        assert_eq!(tx.send(4), SendOutcome::QueuedDroppedOldest(1));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(tx.dropped(), 2);
        assert!(!tx.is_disconnected());
        drop(rx);
        assert!(tx.is_disconnected());
    }
}
