//! What happened when: a node's last notable events (a slave linking or dropping, an apply
//! error, a reload and what it changed, an ack timeout, a drain, a burst of refusals, a client
//! killed for replication), for the console's timeline and `/api/events`.
//!
//! A leaf the node's parts record into; each event is logged where it happens, so this keeps
//! only what an operator looks back at, bounded.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::unix_ms;

/// How many events a node keeps; the oldest go first.
pub const KEPT: usize = 200;

/// Refusals within one second that make a burst worth an event.
pub const REFUSAL_BURST: u64 = 10;

/// One thing that happened.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// Increasing from 1 in the node's lifetime, so a reader can ask for what is new.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// What kind: `slave_linked`, `slave_dropped`, `master_linked`, `master_lost`,
    /// `apply_stopped`, `apply_resumed`, `reload`, `reload_failed`, `ack_timeout`, `drain`,
    /// `refusals`, `lock_kill`.
    pub kind: &'static str,
    /// What, in words.
    pub detail: String,
}

/// The node's last [`KEPT`] events.
#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
    next_id: AtomicU64,
    /// The second refusals are being counted in, and how many so far.
    refusals: Mutex<(u64, u64)>,
}

impl Events {
    /// Records an event of `kind` now.
    pub fn record(&self, kind: &'static str, detail: impl Into<String>) {
        let event = Event {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            at_unix_ms: unix_ms(),
            kind,
            detail: detail.into(),
        };
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// Counts a refused statement; the [`REFUSAL_BURST`]th within one second records a
    /// `refusals` event naming the last one (one event per second at most).
    pub fn refused(&self, user: &str, code: u16) {
        let second = unix_ms() / 1000;
        let burst = {
            let mut counted = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
            if counted.0 != second {
                *counted = (second, 0);
            }
            counted.1 += 1;
            counted.1 == REFUSAL_BURST
        };
        if burst {
            self.record(
                "refusals",
                format!(
                    "{REFUSAL_BURST} statements refused within a second (the last: user '{user}', error {code})"
                ),
            );
        }
    }

    /// The events kept, oldest first, with an id above `after`.
    pub fn since(&self, after: u64) -> Vec<Event> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter().filter(|e| e.id > after).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events_in_order() {
        let events = Events::default();
        for i in 0..KEPT + 5 {
            events.record("reload", format!("#{i}"));
        }
        let kept = events.since(0);
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].detail, "#5");
        assert_eq!(kept[KEPT - 1].id, (KEPT + 5) as u64);
        assert_eq!(events.since((KEPT + 3) as u64).len(), 2);
    }

    #[test]
    fn a_burst_of_refusals_is_one_event() {
        let events = Events::default();
        for _ in 0..REFUSAL_BURST - 1 {
            events.refused("app", 1142);
        }
        assert!(events.since(0).is_empty());
        // The burst may straddle a second boundary; then the count starts over and the test
        // pushes on to a full burst in the new second.
        for _ in 0..=2 * REFUSAL_BURST {
            events.refused("app", 1142);
        }
        let kinds: Vec<&str> = events.since(0).iter().map(|e| e.kind).collect();
        assert!(
            !kinds.is_empty() && kinds.iter().all(|k| *k == "refusals"),
            "{kinds:?}"
        );
        assert!(kinds.len() <= 3, "{kinds:?}");
    }
}
