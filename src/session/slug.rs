//! Session slugs: two friendly words, like OpenCode's `playful-cabin`.

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "cosmic", "crisp", "curious", "eager", "gentle", "glowing", "happy", "hidden", "jolly", "kind", "lucky", "mighty", "misty",
    "neon", "nimble", "playful", "proud", "quick", "quiet", "shiny", "silent", "stellar", "sunny", "swift", "tidy", "witty",
];

const NOUNS: &[&str] = &[
    "cabin", "cactus", "canyon", "circuit", "comet", "eagle", "engine", "falcon", "forest", "garden", "harbor", "island", "knight", "lagoon", "meadow", "moon",
    "mountain", "nebula", "orchid", "otter", "panda", "pixel", "planet", "river", "rocket", "sailor", "squid", "star", "tiger", "wizard", "wolf",
];

pub fn create() -> String {
    let adjective = ADJECTIVES[fastrand::usize(..ADJECTIVES.len())];
    let noun = NOUNS[fastrand::usize(..NOUNS.len())];
    format!("{adjective}-{noun}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_words() {
        let s = super::create();
        let (a, n) = s.split_once('-').unwrap();
        assert!(super::ADJECTIVES.contains(&a) && super::NOUNS.contains(&n), "{s}");
    }
}
