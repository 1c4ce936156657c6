//! backfeed: a self-hosted mention aggregator.
//!
//! The map, by role (each module opens with what it owns and what it must never do):
//!
//! | folder / file | role |
//! |---|---|
//! | [`receive`] | the receivers: webmention, pingback (with its XML-RPC codec), trackback |
//! | [`sources`] | the producers that look for links: own posts, watched feeds and pages, referrer logs, [`sources::social`] (one file per network) |
//! | [`pipeline`] | lease → fetch → verify → moderate → store → ack, shared by every producer |
//! | [`fetch`] | the only outbound HTTP: the SSRF guard, caps, per-host slots and budgets |
//! | [`verify`] | pure functions over fetched text: the bounded HTML parser, the link check, microformats, extraction, sanitizing |
//! | [`store`] | the only SQL, one file per area (posts, jobs — the one durable queue —, verification jobs, mentions, moderation, decisions, fetch state, state, sends, notifications) |
//! | [`publish`] | Atom, RSS, JSON Feed, JF2, the export, and the publishing routes |
//! | [`server`] | the HTTP server around the routes: limits, connections, health, the operator's sign-in and sessions ([`server::auth`]) |
//! | [`metrics`] | the process's counters and what a `/metrics` scrape answers |
//! | [`routes`] | the map of every URL `serve` answers |
//! | [`schedule`], [`shutdown`] | cron schedules inside `serve`, and the one signal everything stops on |
//! | [`admin`] | the operator's page: sign-in, sessions, CSRF, and the pages (maud) |
//! | [`status`] | what `backfeed status` and the status page show, gathered once |
//! | [`cli`], [`config`] | the only code that prints for humans (besides [`admin`]); TOML to a validated configuration |
//! | [`init`] | `backfeed init`: a first configuration from what the site's home page says |
//! | [`lifecycle`] | a mention's status and every way it changes, as plain functions the store follows |
//! | [`model`], [`text`] | plain data and small text helpers every layer shares |
//! | [`sites`] | the sites served, and which one a URL is filed under (longest `base_url` prefix) |
//!
//! Beside these: [`send`] (pings for the blogger's own links), [`notify`] (webhooks and mail),
//! [`import`] (moving in).
//!
//! One mention's way through the code, top to bottom:
//! 1. A producer makes a candidate (source URL, target post): a receiver in [`receive`], a
//!    producer in [`sources`] (whose social API records are their own evidence), or
//!    `backfeed submit`.
//! 2. [`store`] keeps it durably: one row per (source, post) and a job in the queue.
//! 3. [`pipeline`] leases the job, fetches the source through [`fetch`], checks it with the
//!    pure functions of [`verify`], and writes the outcome and its reason back to [`store`].
//! 4. [`publish`] renders what is published for the HTTP routes and for `backfeed export`.
//!
//! Dependencies point one way, layer by layer (`tests/module_map.rs` holds the code to it):
//! `model`, `text`, `sites` and `shutdown` need nothing; `lifecycle` only `model`; `store` and `verify` only those; `config` the
//! store's location; `fetch` and `metrics` the configuration; `pipeline` (the context every
//! role shares) all of these; `server` (limits, sessions, the shared state) the pipeline;
//! `publish`, then `notify` and `receive`, then `send`, `sources`, `schedule`, `status` and
//! `admin` build on those; `routes` and `cli` put it all together. No module reaches back to
//! one it is built on.
//!
//! Where this differs from the suggested architecture, and why: a candidate is a `mentions` row
//! from the start (status `pending`), not a separate table, so a status URL, the CLI and the
//! feeds read one truth and "the same pair updates" is a unique index; receivers' enqueues are
//! group-committed by one thread (see [`store::GroupCommit`]); verification runs on the blocking
//! pool, one page per core, so HTML parsing never stalls HTTP; and the HTML parser's work is
//! counted inside its tree sink ([`verify::html`]), because no pre-scan of the text can know
//! what the tree builder will nest.

pub mod admin;
pub mod cli;
pub mod config;
pub mod fetch;
pub mod import;
pub mod init;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod publish;
pub mod receive;
pub mod routes;
pub mod schedule;
pub mod send;
pub mod server;
pub mod shutdown;
pub mod sites;
pub mod sources;
pub mod status;
pub mod store;
pub mod text;
pub mod verify;
