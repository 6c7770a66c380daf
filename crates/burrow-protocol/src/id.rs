//! OpenCode's sortable identifiers: `prefix_` + 12 hex digits of time and a
//! counter + 14 random base62 characters. Ascending ids sort oldest first;
//! descending ones (sessions) sort newest first.

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
    for _ in 0..RANDOM_LEN {
        out.push(BASE62[fastrand::usize(..BASE62.len())] as char);
    }
    out
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
}
