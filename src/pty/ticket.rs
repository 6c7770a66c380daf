//! One-use tickets for a terminal's WebSocket, for browsers, which cannot send
//! credentials on a WebSocket: an authenticated `POST /pty/{id}/connect-token`
//! gets a ticket that opens that terminal, from that directory, once, within
//! a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a ticket is good for, like the reference.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

struct Ticket {
    pty: String,
    directory: String,
    expires: Instant,
}

#[derive(Default)]
pub struct Tickets {
    map: Mutex<HashMap<String, Ticket>>,
}

impl Tickets {
    /// A new ticket for `pty` in `directory`.
    pub fn issue(&self, pty: &str, directory: &str) -> String {
        let now = Instant::now();
        // From the OS generator: a ticket is a credential for a terminal.
        let id = uuid(u128::from_le_bytes(crate::id::random()));
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, t| t.expires > now);
        map.insert(id.clone(), Ticket { pty: pty.into(), directory: directory.into(), expires: now + TICKET_TTL });
        id
    }

    /// Uses up `ticket`: the directory it was issued in, when it was issued for
    /// `pty` and is still good. Needs nothing but the request's path, so the
    /// server checks it before it resolves the directory or runs anything.
    pub fn take(&self, ticket: &str, pty: &str) -> Option<String> {
        let taken = self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(ticket)?;
        (taken.pty == pty && taken.expires > Instant::now()).then_some(taken.directory)
    }
}

/// A random (version 4) UUID.
fn uuid(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_and_only_where_it_was_issued() {
        let t = Tickets::default();
        let a = t.issue("pty_1", "/w");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(t.take(&a, "pty_2"), None);
        assert_eq!(t.take(&a, "pty_1"), None, "a ticket tried on another terminal is used up");
        let b = t.issue("pty_1", "/w");
        assert_eq!(t.take(&b, "pty_1").as_deref(), Some("/w"));
        assert_eq!(t.take(&b, "pty_1"), None);
        assert_eq!(t.take("bogus", "pty_1"), None);
    }

    #[test]
    fn tickets_are_unique_version_4_uuids() {
        let t = Tickets::default();
        let all: std::collections::HashSet<String> = (0..10_000).map(|_| t.issue("pty_1", "/w")).collect();
        assert_eq!(all.len(), 10_000);
        for a in &all {
            let groups: Vec<usize> = a.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
            assert_eq!(&a[14..15], "4", "{a}");
            assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        }
    }
}
