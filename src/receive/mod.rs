//! The receivers: each protocol answers in its own dialect — a 400 with a plain reason, an
//! XML-RPC fault, a trackback `<error>` — but all share one path: [`Context::submit`] validates
//! and commits the candidate, and only then is success answered.
//!
//! [`Context::submit`]: crate::pipeline::Context::submit

pub mod pingback;
pub mod trackback;
pub mod webmention;
pub mod xmlrpc;
