//! Sessions over HTTP and SSE against the real `burrow serve` binary.

mod crud;
mod persistence;
mod reliability;
mod shapes;
mod shell;
mod support;
