//! backfeed: a self-hosted mention aggregator.
//!
//! One mention's way through the code, top to bottom:
//! 1. A producer makes a candidate (source URL, target post): the receivers in [`server`]
//!    (webmention, pingback via [`xmlrpc`], trackback), the crawler in [`crawl`] (own posts,
//!    watched feeds and pages, referrer logs), the social adapters in [`social`] (whose API
//!    records are their own evidence), or `backfeed submit`.
//! 2. [`store`] keeps it durably: one row per (source, post) and a job in the queue.
//! 3. [`pipeline`] leases the job, fetches the source through [`fetch`] (SSRF guard, caps,
//!    per-host limits), checks it with the pure functions of [`verify`] (which read
//!    microformats through [`mf2`]), and writes the outcome and its reason back to [`store`].
//! 4. [`publish`] renders what is published as Atom, RSS, JSON Feed and JF2, for the HTTP
//!    routes in [`server`] and for `backfeed export`.
//!
//! [`model`] holds the plain data every layer shares; [`config`] turns the TOML into a validated
//! configuration; [`cli`] is the only code that prints for humans; [`schedule`] runs crawl and
//! reverify on their cron schedules inside `serve`; [`shutdown`] is the one signal they all
//! stop on.
//!
//! Where this differs from the suggested architecture, and why: a candidate is a `mentions` row
//! from the start (status `pending`), not a separate table, so a status URL, the CLI and the
//! feeds read one truth and "the same pair updates" is a unique index; receivers' enqueues are
//! group-committed by one thread (see [`store::GroupCommit`]); verification runs on the blocking
//! pool so HTML parsing never stalls HTTP.

pub mod cli;
pub mod config;
pub mod fetch;
pub mod model;
pub mod pipeline;
pub mod publish;
pub mod schedule;
pub mod server;
pub mod shutdown;
pub mod sources;
pub mod store;
pub mod text;
pub mod verify;
pub mod xmlrpc;
