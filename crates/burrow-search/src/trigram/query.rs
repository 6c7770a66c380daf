//! Turns a pattern into a trigram query, as Russ Cox's Code Search does: each
//! node of the pattern's syntax tree (regex-syntax's HIR) is summarised by the
//! strings it can match exactly (while that set is small), or else by the sets
//! of strings every match must start and end with plus a query every match
//! satisfies. The result is an AND/OR tree of trigrams that every file holding
//! a match satisfies: a superset, never a miss. Files it selects are then
//! searched with the ordinary matcher, which decides.
//!
//! Trigrams are bytes as they are, not folded: a case-sensitive search (the
//! default) asks for exactly its own trigrams, which are far rarer than their
//! folded forms (`PM_RESUME` vs every `dpm_resume`). A case-insensitive one
//! still works, since regex-syntax expands each letter into the class of its
//! case variants (non-ASCII ones included), which becomes an OR of spellings.

use std::collections::BTreeSet;

use regex_syntax::hir::{Class, Hir, HirKind};

/// A set of strings is kept exactly up to this size.
const MAX_EXACT: usize = 64;
/// A prefix or suffix set is trimmed past this size.
const MAX_SET: usize = 32;
/// A class with at most this many members is expanded into strings.
const MAX_CLASS: u32 = 16;
/// Crossings of more pairs than this add no condition (they would cost more than they narrow).
const MAX_CROSS: usize = 256;

/// What a file must contain for the pattern to possibly match in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Query {
    /// Any file: no condition.
    All,
    /// No file: the pattern can match nothing.
    Nothing,
    /// The file contains this trigram.
    Tri(u32),
    And(Vec<Query>),
    Or(Vec<Query>),
}

impl Query {
    fn and(self, other: Query) -> Query {
        match (self, other) {
            (Query::All, q) | (q, Query::All) => q,
            (Query::Nothing, _) | (_, Query::Nothing) => Query::Nothing,
            (Query::And(mut a), Query::And(b)) => {
                a.extend(b);
                Query::And(dedup(a))
            }
            (Query::And(mut a), q) | (q, Query::And(mut a)) => {
                a.push(q);
                Query::And(dedup(a))
            }
            (a, b) if a == b => a,
            (a, b) => Query::And(vec![a, b]),
        }
    }

    fn or(self, other: Query) -> Query {
        match (self, other) {
            (Query::All, _) | (_, Query::All) => Query::All,
            (Query::Nothing, q) | (q, Query::Nothing) => q,
            (Query::Or(mut a), Query::Or(b)) => {
                a.extend(b);
                Query::Or(dedup(a))
            }
            (Query::Or(mut a), q) | (q, Query::Or(mut a)) => {
                a.push(q);
                Query::Or(dedup(a))
            }
            (a, b) if a == b => a,
            (a, b) => Query::Or(vec![a, b]),
        }
    }
}

fn dedup(mut v: Vec<Query>) -> Vec<Query> {
    v.sort();
    v.dedup();
    v
}

/// The key of a trigram: its three bytes.
pub fn key(t: &[u8]) -> u32 {
    (t[0] as u32) << 16 | (t[1] as u32) << 8 | t[2] as u32
}

/// Whether an indexed trigram may contain this byte. A match never spans a
/// line, so trigrams across a line end are neither stored nor asked for.
pub fn indexable(t: &[u8]) -> bool {
    !t.contains(&b'\n')
}

/// The query of every trigram of `s`, or `All` when `s` is shorter than three bytes.
fn trigrams_of(s: &[u8]) -> Query {
    let mut q = Query::All;
    for t in s.windows(3) {
        if indexable(t) {
            q = q.and(Query::Tri(key(t)));
        }
    }
    q
}

/// A match contains one of `set`: the OR of each string's trigrams.
fn any_of(set: &BTreeSet<Vec<u8>>) -> Query {
    let mut q = Query::Nothing;
    for s in set {
        q = q.or(trigrams_of(s));
        if q == Query::All {
            break;
        }
    }
    q
}

/// The summary of one node (Cox's `regexpInfo`).
#[derive(Clone, Debug)]
struct Info {
    /// Every string the node matches, when known and small.
    exact: Option<BTreeSet<Vec<u8>>>,
    /// Each match starts with one of these (when `exact` is None).
    prefix: BTreeSet<Vec<u8>>,
    /// Each match ends with one of these (when `exact` is None).
    suffix: BTreeSet<Vec<u8>>,
    /// Every match satisfies this.
    q: Query,
}

fn set(items: impl IntoIterator<Item = Vec<u8>>) -> BTreeSet<Vec<u8>> {
    items.into_iter().collect()
}

fn cross(a: &BTreeSet<Vec<u8>>, b: &BTreeSet<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    out
}

impl Info {
    fn exact(strings: BTreeSet<Vec<u8>>) -> Info {
        Info { exact: Some(strings), prefix: BTreeSet::new(), suffix: BTreeSet::new(), q: Query::All }
    }

    fn empty_string() -> Info {
        Info::exact(set([Vec::new()]))
    }

    /// Matches anything: nothing is known.
    fn any() -> Info {
        Info { exact: None, prefix: set([Vec::new()]), suffix: set([Vec::new()]), q: Query::All }
    }

    /// The same node described without an exact set.
    fn inexact(mut self) -> Info {
        if let Some(exact) = self.exact.take() {
            self.q = self.q.and(any_of(&exact));
            self.prefix = exact.clone();
            self.suffix = exact;
            self.simplify();
        }
        self
    }

    fn starts(&self) -> &BTreeSet<Vec<u8>> {
        self.exact.as_ref().unwrap_or(&self.prefix)
    }

    fn ends(&self) -> &BTreeSet<Vec<u8>> {
        self.exact.as_ref().unwrap_or(&self.suffix)
    }

    /// Bounds the sets: an oversized exact set becomes prefix and suffix sets,
    /// and oversized prefix and suffix sets give their trigrams to `q` and are
    /// cut to their first (last) bytes, which still start (end) every match.
    fn simplify(&mut self) {
        if self.exact.as_ref().is_some_and(|e| e.len() > MAX_EXACT) {
            let me = std::mem::replace(self, Info::any());
            *self = me.inexact();
            return;
        }
        if self.exact.is_some() {
            return;
        }
        for keep_end in [false, true] {
            let strings = if keep_end { &mut self.suffix } else { &mut self.prefix };
            if strings.len() <= MAX_SET {
                continue;
            }
            self.q = std::mem::replace(&mut self.q, Query::All).and(any_of(strings));
            for n in [2usize, 1, 0] {
                *strings = strings.iter().map(|s| if keep_end { s[s.len().saturating_sub(n)..].to_vec() } else { s[..s.len().min(n)].to_vec() }).collect();
                if strings.len() <= MAX_SET {
                    break;
                }
            }
        }
    }

    fn concat(self, next: Info) -> Info {
        if let (Some(a), Some(b)) = (&self.exact, &next.exact) {
            if a.len() * b.len() <= MAX_EXACT {
                return Info::exact(cross(a, b));
            }
        }
        let mut q = self.q.clone().and(next.q.clone());
        if self.ends().len() * next.starts().len() <= MAX_CROSS {
            q = q.and(any_of(&cross(self.ends(), next.starts())));
        }
        let prefix = match &self.exact {
            Some(a) => cross(a, &next.clone().inexact().prefix),
            None => self.prefix.clone(),
        };
        let suffix = match &next.exact {
            Some(b) => cross(&self.clone().inexact().suffix, b),
            None => next.suffix.clone(),
        };
        // An exact side's own trigrams hold too.
        for side in [&self, &next] {
            if let Some(e) = &side.exact {
                q = q.and(any_of(e));
            }
        }
        let mut info = Info { exact: None, prefix, suffix, q };
        info.simplify();
        info
    }

    fn alternate(self, other: Info) -> Info {
        if let (Some(a), Some(b)) = (&self.exact, &other.exact) {
            let mut info = Info::exact(a.union(b).cloned().collect());
            info.simplify();
            return info;
        }
        let (a, b) = (self.inexact(), other.inexact());
        let mut info =
            Info { exact: None, prefix: a.prefix.union(&b.prefix).cloned().collect(), suffix: a.suffix.union(&b.suffix).cloned().collect(), q: a.q.or(b.q) };
        info.simplify();
        info
    }

    /// What every match of the whole pattern satisfies.
    fn into_query(self) -> Query {
        match &self.exact {
            Some(e) => self.q.clone().and(any_of(e)),
            None => self.q.clone().and(any_of(&self.prefix)).and(any_of(&self.suffix)),
        }
    }
}

/// The members of a class as strings, when there are few enough of them.
/// The line end is left out: the matcher never matches it (grep-regex removes it
/// from classes).
fn class_strings(class: &Class) -> Option<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    match class {
        Class::Unicode(c) => {
            let count: u32 = c.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            if count > MAX_CLASS {
                return None;
            }
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    if ch != '\n' {
                        let mut buf = [0u8; 4];
                        out.insert(ch.encode_utf8(&mut buf).as_bytes().to_vec());
                    }
                }
            }
        }
        Class::Bytes(c) => {
            let count: u32 = c.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
            if count > MAX_CLASS {
                return None;
            }
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    if b != b'\n' {
                        out.insert(vec![b]);
                    }
                }
            }
        }
    }
    Some(out)
}

fn info(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::empty_string(),
        HirKind::Literal(lit) => Info::exact(set([lit.0.to_vec()])),
        HirKind::Class(class) => match class_strings(class) {
            Some(strings) => Info::exact(strings),
            None => Info { exact: None, prefix: set([Vec::new()]), suffix: set([Vec::new()]), q: Query::All },
        },
        HirKind::Capture(cap) => info(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = info(&rep.sub);
            match (rep.min, rep.max) {
                (0, Some(1)) => sub.alternate(Info::empty_string()),
                (0, _) => Info::any(),
                (1, Some(1)) => sub,
                // x{n,m} with n >= 1: every match starts and ends like x, and holds one x.
                _ => sub.inexact(),
            }
        }
        HirKind::Concat(subs) => subs.iter().map(info).reduce(Info::concat).unwrap_or_else(Info::empty_string),
        HirKind::Alternation(subs) => subs.iter().map(info).reduce(Info::alternate).unwrap_or_else(|| Info::exact(BTreeSet::new())),
    }
}

/// The trigram query of `pattern`, parsed as grep-regex parses it; `All` when
/// the pattern yields no trigram (or does not parse here: the matcher decides).
pub fn plan(pattern: &str, case_insensitive: bool) -> Query {
    let parsed = regex_syntax::ParserBuilder::new().case_insensitive(case_insensitive).multi_line(true).utf8(false).build().parse(pattern);
    match parsed {
        Ok(hir) => info(&hir).into_query(),
        Err(_) => Query::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tri(s: &str) -> Query {
        Query::Tri(key(s.as_bytes()))
    }

    #[test]
    fn literals_need_all_their_trigrams() {
        assert_eq!(plan("PM_RESUME", false), Query::And(dedup(["PM_", "M_R", "_RE", "RES", "ESU", "SUM", "UME"].map(tri).to_vec())));
        // Case-insensitive: each window of three letters is one of its spellings.
        let q = plan("abc", true);
        assert_eq!(q, Query::Or(dedup(["abc", "abC", "aBc", "aBC", "Abc", "AbC", "ABc", "ABC"].map(tri).to_vec())));
    }

    #[test]
    fn patterns_without_trigrams_plan_no_condition() {
        for p in [".", "\\w+", "ab", "a.b", "", "(?s).*", "[a-z]+"] {
            assert_eq!(plan(p, false), Query::All, "{p}");
        }
    }

    #[test]
    fn alternations_and_classes_become_ors() {
        assert_eq!(plan("foo|bar", false), Query::Or(vec![tri("bar"), tri("foo")]));
        assert_eq!(plan("colou?r", false), plan("color|colour", false));
        let q = plan("ab[cd]", false);
        assert_eq!(q, Query::Or(vec![tri("abc"), tri("abd")]));
        // One branch without trigrams frees the whole alternation.
        assert_eq!(plan("foo|.", false), Query::All);
    }

    #[test]
    fn repetitions_and_concatenations_keep_what_holds() {
        // hello.*world: both words are required.
        assert_eq!(plan("hello.*world", false), Query::And(dedup(["hel", "ell", "llo", "wor", "orl", "rld"].map(tri).to_vec())));
        // (abc)+ needs abc; (abc)* needs nothing.
        assert_eq!(plan("(abc)+", false), tri("abc"));
        assert_eq!(plan("x(abc)*y", false), Query::All);
        // An impossible class matches nothing.
        assert_eq!(plan("abc[^\\x00-\\x{10FFFF}]", false), Query::Nothing);
    }
}
