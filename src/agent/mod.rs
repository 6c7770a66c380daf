//! The agent runtime: providers that stream model output, tools that run in
//! the environment, and the loop that joins them into OpenCode messages.

pub mod changes;
pub mod compaction;
pub mod input;
pub mod parts;
pub mod permission;
pub mod prompt;
pub mod provider;
pub mod question;
pub mod resolve;
pub mod tools;
pub mod turn;
