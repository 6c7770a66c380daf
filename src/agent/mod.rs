//! The agent runtime: providers that stream model output, tools that run in
//! the environment, and the loop that joins them into OpenCode messages.

pub mod provider;
