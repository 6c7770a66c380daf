//! The object-storage environment: a workspace in an S3 bucket (or GCS,
//! Azure Blob, WebDAV, a folder or memory, all through opendal).
//!
//! Files map to objects and folders to key prefixes. There is no compute next
//! to the data, so commands, terminals and watching are refused with
//! [`EnvError::Unsupported`] (a 501), and search runs in the server: the
//! streamed walk and grep of `search::stream`, fed by a listing index
//! (`listing.rs`) and a content cache (`cache.rs`) so that searching an
//! unchanged bucket again downloads nothing.

pub mod options;

#[cfg(feature = "object")]
mod cache;
#[cfg(feature = "object")]
mod env;
#[cfg(feature = "object")]
mod errors;
#[cfg(feature = "object")]
mod listing;
#[cfg(feature = "object")]
pub mod location;
#[cfg(feature = "object")]
mod snapshot;
#[cfg(feature = "object")]
mod text;
#[cfg(feature = "object")]
mod tree;

#[cfg(feature = "object")]
pub use env::{CacheStats, ObjectEnv};
pub use options::ObjectArgs;
