//! Serde types of the OpenCode protocol, with their OpenAPI schemas.

pub mod file;
pub mod message;
pub mod num;
pub mod order;
pub mod part;
pub mod project;
pub mod session;
