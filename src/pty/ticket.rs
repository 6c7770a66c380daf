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

    /// Uses up `ticket`; true when it was issued for `pty` in `directory` and is still good.
    pub fn consume(&self, ticket: &str, pty: &str, directory: &str) -> bool {
        let taken = self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(ticket);
        taken.is_some_and(|t| t.pty == pty && t.directory == directory && t.expires > Instant::now())
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
        assert!(!t.consume(&a, "pty_2", "/w"));
        let b = t.issue("pty_1", "/w");
        assert!(t.consume(&b, "pty_1", "/w"));
        assert!(!t.consume(&b, "pty_1", "/w"));
        assert!(!t.consume("bogus", "pty_1", "/w"));
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
