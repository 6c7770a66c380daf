//! `cargo run --release -p burrow-search --example trigram_probe -- INDEX ROOT PATTERN`:
//! times each step of one indexed search (planning, posting lists, the search),
//! to see where a slow query spends its time.

use std::path::Path;
use std::time::Instant;

use burrow_protocol::env::GrepRequest;
use burrow_search::grep::open_regular;
use burrow_search::trigram::{grep, query, Dirty, TrigramIndex};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, root, pattern] = &args[..] else {
        eprintln!("usage: trigram_probe INDEX ROOT PATTERN");
        std::process::exit(2);
    };
    let t = Instant::now();
    let index = TrigramIndex::open(Path::new(index)).expect("the index opens");
    println!("open {:?}", t.elapsed());
    for _ in 0..3 {
        let t = Instant::now();
        let q = query::plan(pattern, false);
        let planned = t.elapsed();
        let t = Instant::now();
        let ids = index.eval(&q).expect("eval");
        let evaluated = t.elapsed();
        let req = GrepRequest { dir: String::new(), pattern: pattern.clone(), include: None, limit: 100_000, case_insensitive: false };
        let t = Instant::now();
        let found = grep(Path::new(root), &index, &Dirty::default(), &req, &open_regular).expect("grep").map(|r| r.matches.len());
        println!("plan {planned:?} · eval {evaluated:?} ({:?} candidates) · grep {:?} ({found:?} matches)", ids.map(|v| v.len()), t.elapsed());
    }
}
