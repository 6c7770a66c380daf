//! OpenCode's sortable identifiers: `prefix_` + 12 hex digits of time and a
//! counter + 14 random base62 characters. Ascending ids sort oldest first;
//! descending ones (sessions) sort newest first.
//!
//! The random part comes from the operating system's generator ([`random`]),
//! not a fast seeded one: ids name sessions, permissions and saved outputs,
//! and one that can be predicted from another can be guessed.

use std::sync::Mutex;

const RANDOM_LEN: usize = 14;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static CLOCK: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// The kinds of id the protocol uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Session,
    Message,
    Part,
    Event,
    Pty,
    Permission,
    Call,
    Tool,
    Workspace,
    /// A stored provider credential (v2 `/api/credential/{id}`).
    Credential,
    /// A saved `always` permission answer (v2 `/api/permission/saved/{id}`).
    SavedPermission,
    /// A pending question of the agent's `question` tool.
    Question,
}

impl Prefix {
    fn as_str(self) -> &'static str {
        match self {
            Prefix::Session => "ses",
            Prefix::Message => "msg",
            Prefix::Part => "prt",
            Prefix::Event => "evt",
            Prefix::Pty => "pty",
            Prefix::Permission => "per",
            Prefix::Call => "call",
            Prefix::Tool => "tool",
            Prefix::Workspace => "wrk",
            Prefix::Credential => "crd",
            Prefix::SavedPermission => "psv",
            Prefix::Question => "que",
        }
    }
}

pub fn ascending(prefix: Prefix) -> String {
    create(prefix, false)
}

pub fn descending(prefix: Prefix) -> String {
    create(prefix, true)
}

fn create(prefix: Prefix, descending: bool) -> String {
    let ts = crate::now_ms();
    let counter = {
        let mut clock = CLOCK.lock().unwrap_or_else(|e| e.into_inner());
        if clock.0 != ts {
            *clock = (ts, 0);
        }
        clock.1 += 1;
        clock.1
    };
    let mut now = ts.wrapping_mul(0x1000).wrapping_add(counter);
    if descending {
        now = !now;
    }
    let mut out = String::with_capacity(prefix.as_str().len() + 1 + 12 + RANDOM_LEN);
    out.push_str(prefix.as_str());
    out.push('_');
    for i in 0..6 {
        let byte = (now >> (40 - 8 * i)) & 0xff;
        out.push_str(&format!("{byte:02x}"));
    }
    let mut taken = 0;
    while taken < RANDOM_LEN {
        // 248 = 4 × 62: bytes above it are dropped so every character is equally likely.
        for b in random::<32>().into_iter().filter(|&b| b < 248).take(RANDOM_LEN - taken) {
            out.push(BASE62[usize::from(b) % BASE62.len()] as char);
            taken += 1;
        }
    }
    out
}

/// `N` bytes from the operating system's cryptographic generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Linux's getrandom(2) cannot fail once the pool is seeded (it blocks until
    // then), so an error here means a broken system, not a bad request.
    getrandom::fill(&mut buf).expect("the operating system's random generator failed");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_order() {
        let a = ascending(Prefix::Message);
        let b = ascending(Prefix::Message);
        assert!(a.starts_with("msg_") && a.len() == 4 + 12 + RANDOM_LEN);
        assert!(a[4..16] < b[4..16], "{a} {b}");
        let x = descending(Prefix::Session);
        let y = descending(Prefix::Session);
        assert!(x[4..16] > y[4..16], "{x} {y}");
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let ids: Vec<String> = (0..20_000).map(|_| ascending(Prefix::Part)).collect();
        let unique: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let (prefix, rest) = id.split_once('_').unwrap();
            assert_eq!(prefix, "prt");
            assert_eq!(rest.len(), 12 + RANDOM_LEN, "{id}");
            assert!(rest[..12].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
            assert!(rest[12..].bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        // The random tails alone are unique too, and use the whole alphabet.
        let tails: std::collections::HashSet<&str> = ids.iter().map(|i| &i[16..]).collect();
        assert_eq!(tails.len(), ids.len());
        let used: std::collections::HashSet<u8> = ids.iter().flat_map(|i| i[16..].bytes()).collect();
        assert_eq!(used.len(), BASE62.len());
    }
}
