//! Serde types of the OpenCode protocol, with their OpenAPI schemas.

pub mod file;
pub mod order;
pub mod project;
