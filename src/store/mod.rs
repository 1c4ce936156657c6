//! The only SQL in backfeed: a SQLite file in WAL mode, or a PostgreSQL database
//! ([`Location`]), migrated forward on open under a lock.
//!
//! Shape: every (source, target post) pair is one row of `mentions`, from the moment it is a
//! candidate (`pending`) to verified, held, rejected or deleted. The durable queue is a second
//! table, `jobs`, holding the work still to do (verify a mention, deliver a notification, send a
//! post's pings) under fenced leases, so that a crash mid-job only delays the job. Keeping the
//! pair in one row from the start means a webmention's status URL, `backfeed mentions --status
//! pending` and the feeds all read the same truth, and "a second ping for the same pair updates
//! it" is a unique index, not a merge.
//!
//! Connections: on SQLite one writer, a single connection behind a mutex, does every write, so
//! SQLite never sees two writers racing for its lock; reads use a small pool of their own (WAL
//! lets them run beside the writer). PostgreSQL takes writers side by side (a fleet's processes
//! write at once anyway), so there reads and writes alike take a connection from one pool
//! ([`db`] speaks both engines). No connection is ever held across a network await: every
//! method here is synchronous and short.
//!
//! Files by area, each an `impl Store` block with its SQL: [`posts`], [`queue`] (the durable
//! job queue and group commit), [`mentions`] (outcomes applied, listings, counts),
//! [`together`] (on PostgreSQL, a group commit's verified outcomes and new pings written with
//! one statement of each kind for the group), [`conversations`] (one reaction seen through
//! several channels kept as one mention), [`moderation`] (approve, reject, blocks),
//! [`decisions`], [`fetch_state`] and [`state`] (what crawls and schedules remember), [`fleet`]
//! (the processes sharing a store, their host slots and schedule claims), [`sessions`] (the
//! operator's), [`changes`] (the blocks, profiles and posts kept in memory on PostgreSQL until
//! a change is heard). PostgreSQL's schema is [`postgres`];
//! [`pg_socket`] is its connections' socket, driven by the thread that waits.
//! Nothing outside this folder writes SQL.
//!
//! The interface is narrow on purpose (methods named for what the pipeline means, plain values
//! in and out), so that another backend could stand behind the same methods. Its one error is
//! [`StoreError`]: no database crate's type crosses this folder's edge. Inside, functions speak
//! the store's own `Result` (so that a closure's error rolls back what it wrote); [`Store::read`],
//! [`Store::write`] and the group commit turn it into a `StoreError` on the way out — a write
//! refused for a stale lease ([`jobs`]) becomes `StoreError::StaleLease`.

mod changes;
mod conversations;
pub(crate) mod db;
mod decisions;
mod fetch_state;
mod fleet;
mod import;
mod jobs;
mod mentions;
mod moderation;
mod notifications;
mod pg_socket;
mod postgres;
mod posts;
mod queue;
mod sends;
mod state;
#[doc(hidden)]
pub mod testing;
mod together;

pub use decisions::{Decision, DecisionFilter};
pub use fetch_state::{FailingUrl, FetchState};
pub use fleet::{HEARTBEAT_SECS, HostSlot, Instance, LIVE_SECS, WorkDone};
pub use import::{ImportCounts, ImportMode, ImportedMention, Importer};
mod serve_lock;
mod sessions;
mod sites;
pub use jobs::{JobKind, Lease, hostname, new_owner, set_owner_role};
pub use mentions::{Applied, Counts, MentionFilter, Unpublished};
pub use notifications::{Delivery, PendingDeliveries};
pub use posts::{ListedPost, PostRef, PostSendState, now_millis};
pub use queue::{Candidate, Enqueued, GroupCommit, HostRoom, Job};
pub use sends::{SendRecord, SendResult};
pub use serve_lock::ServeLock;
pub use sites::{Forgotten, SiteCounts};
pub use state::{ScheduleRun, SocialSourceState};

use db::Conn;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What can go wrong in the store, whatever its engine: the one error type callers outside
/// `store` see (no database crate's error crosses this boundary).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no (locked past the busy timeout, a full disk, a constraint, a lost
    /// connection).
    #[error("{0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// A query that had to find a row found none.
    #[error("no such row")]
    NotFound,
    /// A write refused because its lease was taken over (see [`jobs::StaleLease`]).
    #[error(transparent)]
    StaleLease(Box<jobs::StaleLease>),
}

impl StoreError {
    /// Whether this is a write refused for a stale lease.
    pub fn is_stale_lease(&self) -> bool {
        matches!(self, StoreError::StaleLease(_))
    }

    /// Any other error, as the store's.
    pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

/// What the store's public functions return.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// Inside the store, the same (a closure's error rolls back what it wrote).
pub(crate) type Result<T> = StoreResult<T>;

/// A time before every time the store keeps, as a lower bound on both engines: PostgreSQL's
/// `-infinity`, and on SQLite a text that sorts before every RFC 3339 time.
pub(crate) const BEFORE_ANY_TIME: &str = "-infinity";

pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE posts (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,
    match_key  TEXT NOT NULL UNIQUE,
    key        TEXT NOT NULL UNIQUE,
    title      TEXT,
    published  TEXT,
    atom_id    TEXT,
    first_seen TEXT NOT NULL
);
CREATE TABLE mentions (
    id              INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    target          TEXT NOT NULL,
    target_key      TEXT NOT NULL,
    post_id         INTEGER REFERENCES posts(id),
    kind            TEXT NOT NULL,
    type            TEXT NOT NULL DEFAULT 'mention',
    status          TEXT NOT NULL DEFAULT 'pending',
    moderation      TEXT,
    reason          TEXT,
    title           TEXT,
    author_name     TEXT,
    author_url      TEXT,
    author_photo    TEXT,
    published       TEXT,
    excerpt         TEXT,
    content_html    TEXT,
    final_url       TEXT,
    hint            TEXT,
    not_found_count INTEGER NOT NULL DEFAULT 0,
    first_seen      TEXT NOT NULL,
    verified_at     TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (source, target_key)
);
CREATE INDEX mentions_status_updated ON mentions (status, updated_at);
CREATE INDEX mentions_post ON mentions (post_id, status);
CREATE TABLE queue (
    mention_id  INTEGER PRIMARY KEY REFERENCES mentions(id),
    next_try    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until TEXT,
    conditional INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_next ON queue (next_try);
CREATE TABLE decisions (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL,
    target  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX decisions_at ON decisions (at);
CREATE TABLE fetch_state (
    url           TEXT PRIMARY KEY,
    etag          TEXT,
    last_modified TEXT,
    fingerprint   TEXT,
    error_count   INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_ok       TEXT,
    next_try      TEXT,
    updated_at    TEXT NOT NULL
);
CREATE TABLE blocks (
    domain     TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- How this job's candidate arrived (the decision log's kind; the mention keeps its first kind).
ALTER TABLE queue ADD COLUMN arrival TEXT;
-- Which job loop holds the lease: a loop gives back only its own.
ALTER TABLE queue ADD COLUMN lease_owner TEXT;
-- The unguessable name of a mention's status page (ids are sequential: anyone could read all).
ALTER TABLE mentions ADD COLUMN status_token TEXT;
UPDATE mentions SET status_token = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX mentions_status_token ON mentions (status_token);
-- When the source was last looked at; verified_at and updated_at move only when what is
-- published changes.
ALTER TABLE mentions ADD COLUMN checked_at TEXT;
UPDATE mentions SET checked_at = COALESCE(verified_at, updated_at);
"#,
    r#"
-- Typed state instead of string-built keys in `kv`, moved over with what it held.
CREATE TABLE schedule_runs (
    job          TEXT PRIMARY KEY,
    last_start   TEXT,
    last_end     TEXT,
    last_summary TEXT
);
INSERT INTO schedule_runs (job, last_start, last_end, last_summary)
SELECT j.job,
       (SELECT value FROM kv WHERE key = 'schedule:' || j.job || ':last_start'),
       (SELECT value FROM kv WHERE key = 'schedule:' || j.job || ':last_end'),
       (SELECT value FROM kv WHERE key = 'schedule:' || j.job || ':last_summary')
FROM (SELECT 'crawl' AS job UNION ALL SELECT 'reverify') AS j
WHERE EXISTS (SELECT 1 FROM kv WHERE key LIKE 'schedule:' || j.job || ':%');
CREATE TABLE social_sources (
    source     TEXT PRIMARY KEY,
    skip_until TEXT,
    last_error TEXT
);
CREATE TABLE social_posts (
    source    TEXT NOT NULL,
    post_key  TEXT NOT NULL,
    polled_at TEXT,
    since     TEXT,
    PRIMARY KEY (source, post_key)
);
WITH names (source) AS (VALUES ('hackernews'), ('reddit'), ('bluesky'), ('mastodon'))
INSERT INTO social_sources (source, skip_until, last_error)
SELECT n.source,
       (SELECT value FROM kv WHERE key = 'social:' || n.source || ':skip_until'),
       (SELECT NULLIF(value, '') FROM kv WHERE key = 'social:' || n.source || ':error')
FROM names AS n
WHERE EXISTS (SELECT 1 FROM kv WHERE key IN ('social:' || n.source || ':skip_until', 'social:' || n.source || ':error'));
WITH names (source) AS (VALUES ('hackernews'), ('reddit'), ('bluesky'), ('mastodon'))
INSERT INTO social_posts (source, post_key, polled_at)
SELECT n.source, substr(kv.key, length('social:' || n.source || ':polled:') + 1), kv.value
FROM kv, names AS n WHERE kv.key LIKE 'social:' || n.source || ':polled:%';
WITH names (source) AS (VALUES ('hackernews'), ('reddit'), ('bluesky'), ('mastodon'))
INSERT INTO social_posts (source, post_key, since)
SELECT n.source, substr(kv.key, length('social:' || n.source || ':since:') + 1), kv.value
FROM kv, names AS n WHERE kv.key LIKE 'social:' || n.source || ':since:%'
ON CONFLICT (source, post_key) DO UPDATE SET since = excluded.since;
CREATE TABLE seen_items (
    watched     TEXT NOT NULL,
    item        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (watched, item)
);
CREATE TABLE log_offsets (
    path   TEXT PRIMARY KEY,
    inode  INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
INSERT INTO log_offsets (path, inode, offset)
SELECT substr(key, 9), CAST(substr(value, 1, instr(value, ':') - 1) AS INTEGER),
       CAST(substr(value, instr(value, ':') + 1) AS INTEGER)
FROM kv WHERE key LIKE 'refback:%' AND instr(value, ':') > 0;
INSERT INTO seen_items (watched, item, fingerprint)
SELECT substr(key, 6), '', value FROM kv WHERE key LIKE 'page:%';
-- Feed items were kept as 'item:<feed URL>:<item id>', which cannot be split where both hold
-- colons: each watched feed's items are read once more after this upgrade (their candidates
-- coalesce with the mentions already stored).
CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT);
DROP TABLE kv;
"#,
    r#"
-- Sending: a post's content as its own feed carries it (for posts whose page has no h-entry),
-- and per (post, link) what was sent where, with what answer.
ALTER TABLE posts ADD COLUMN feed_content TEXT;
CREATE TABLE sends (
    id          INTEGER PRIMARY KEY,
    post_id     INTEGER NOT NULL REFERENCES posts(id),
    target      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    protocol    TEXT,
    endpoint    TEXT,
    status      TEXT NOT NULL,
    http_status INTEGER,
    reason      TEXT,
    sent_at     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    TEXT,
    UNIQUE (post_id, target)
);
CREATE INDEX sends_retry ON sends (status, next_try);
"#,
    r#"
-- Moving in: where an imported mention came from, and whether reverify may check it.
ALTER TABLE mentions ADD COLUMN imported TEXT;
ALTER TABLE mentions ADD COLUMN imported_verify INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Notifications: an event written in the transaction that publishes or deletes a mention,
-- then one delivery per configured channel (a webhook URL, or mail), retried until done.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    mention_id INTEGER NOT NULL REFERENCES mentions(id),
    event      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notifications_fan_out ON notifications (fanned_out);
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_try        TEXT NOT NULL,
    last_error      TEXT,
    delivered_at    TEXT,
    lease_until     TEXT,
    lease_owner     TEXT,
    UNIQUE (notification_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (status, next_try);
-- The channels configured now (webhook URLs, `mail`); none: nothing is queued.
CREATE TABLE notify_channels (channel TEXT PRIMARY KEY);
-- Every path that publishes or unpublishes a mention (verification, moderation, blocks,
-- deletion) changes its status: the event is queued by the database in that same transaction.
CREATE TRIGGER mention_published AFTER UPDATE OF status ON mentions
WHEN NEW.status = 'verified' AND OLD.status != 'verified' AND EXISTS (SELECT 1 FROM notify_channels)
BEGIN
    INSERT INTO notifications (mention_id, event, created_at)
    VALUES (NEW.id, 'published', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
CREATE TRIGGER mention_unpublished AFTER UPDATE OF status ON mentions
WHEN OLD.status = 'verified' AND NEW.status != 'verified' AND EXISTS (SELECT 1 FROM notify_channels)
BEGIN
    INSERT INTO notifications (mention_id, event, created_at)
    VALUES (NEW.id, 'deleted', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
"#,
    r#"
-- Publishing at scale: an index for each query shape the routes use, and a version of what is
-- published, moved by the database whenever it changes, so a feed's ETag needs no render.
CREATE INDEX mentions_published ON mentions (status, first_seen, id);
CREATE INDEX mentions_target_published ON mentions (target_key, status, first_seen, id);
CREATE INDEX mentions_target_types ON mentions (target_key, status, type);
CREATE TABLE publish_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    changed_at TEXT NOT NULL
);
INSERT INTO publish_state (id, version, changed_at)
VALUES (1, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
-- A published mention appears, goes, or changes what it shows (updated_at moves only then).
CREATE TRIGGER published_update AFTER UPDATE ON mentions
WHEN (OLD.status = 'verified') != (NEW.status = 'verified')
  OR (NEW.status = 'verified' AND OLD.updated_at IS NOT NEW.updated_at)
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
END;
CREATE TRIGGER published_insert AFTER INSERT ON mentions WHEN NEW.status = 'verified'
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
END;
CREATE TRIGGER published_delete AFTER DELETE ON mentions WHEN OLD.status = 'verified'
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
END;
-- Entries name their post's title.
CREATE TRIGGER published_post_titles AFTER UPDATE OF title, url ON posts
WHEN OLD.title IS NOT NEW.title OR OLD.url IS NOT NEW.url
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
END;
"#,
    r#"
-- A block remembers what it hid, so lifting it brings a held mention back held, not published.
ALTER TABLE mentions ADD COLUMN status_before_block TEXT;
"#,
    r#"
-- One durable queue for every kind of work (see store/jobs.rs): a job is (kind, subject) —
-- `verify` a mention, `deliver` a notification, `send` a post's pings again — due at next_try,
-- leased by one loop at a time. The mention queue, the deliveries' schedule and the sends'
-- retries move in.
CREATE TABLE jobs (
    kind        TEXT NOT NULL CHECK (kind IN ('verify', 'deliver', 'send')),
    subject     INTEGER NOT NULL,
    next_try    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until TEXT,
    lease_owner TEXT,
    conditional INTEGER NOT NULL DEFAULT 0,
    arrival     TEXT,
    PRIMARY KEY (kind, subject)
) WITHOUT ROWID;
CREATE INDEX jobs_due ON jobs (kind, next_try, subject);
INSERT INTO jobs (kind, subject, next_try, attempts, lease_until, lease_owner, conditional, arrival)
    SELECT 'verify', mention_id, next_try, attempts, lease_until, lease_owner, conditional, arrival FROM queue;
INSERT INTO jobs (kind, subject, next_try, attempts, lease_until, lease_owner)
    SELECT 'deliver', id, next_try, attempts, lease_until, lease_owner FROM deliveries WHERE status = 'pending';
INSERT INTO jobs (kind, subject, next_try)
    SELECT 'send', post_id, MIN(next_try) FROM sends
    WHERE status = 'retrying' AND next_try IS NOT NULL GROUP BY post_id;
DROP TABLE queue;
DROP INDEX deliveries_due;
ALTER TABLE deliveries DROP COLUMN next_try;
ALTER TABLE deliveries DROP COLUMN lease_until;
ALTER TABLE deliveries DROP COLUMN lease_owner;
"#,
    r#"
-- No query asks for mentions by (status, updated_at): the index only cost every status change
-- one more B-tree to write. Status-only lookups use mentions_published (status, …).
DROP INDEX mentions_status_updated;
"#,
    r#"
-- Four indexes held the status, so intake wrote four entries for a pending mention and every
-- status change moved four. Three of them serve published mentions only (a post's mentions, a
-- target's feed and counts): they now hold published mentions only, so intake and refusals
-- leave them alone, publishing adds one entry to each, and what was never published (most of
-- what crawling finds) does not grow them. They keep the status column so that the planner,
-- which counts equal columns, still prefers them to (status, first_seen, id) for one target;
-- a query uses them only when it names 'verified' literally.
DROP INDEX mentions_post;
DROP INDEX mentions_target_published;
DROP INDEX mentions_target_types;
CREATE INDEX mentions_post_published ON mentions (post_id, status) WHERE status = 'verified';
CREATE INDEX mentions_target_published ON mentions (target_key, status, first_seen, id)
    WHERE status = 'verified';
CREATE INDEX mentions_target_types ON mentions (target_key, status, type) WHERE status = 'verified';
"#,
    r#"
-- Fenced leases (see store/jobs.rs): every lease bumps `fence`, and every write of a job's
-- outcome names the fence it was leased under, so a holder whose lease was taken over writes
-- nothing. `again` marks a job asked for again while leased: finishing it requeues it.
ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN again INTEGER NOT NULL DEFAULT 0;
-- Sending as a state machine (see send/mod.rs): a post's content counts as sent only when a
-- run gave every link an outcome (`sent_fingerprint`); a post is deleted only when its page
-- answers 404 or 410 and the site's feeds and sitemaps no longer list it (`listed_at` older
-- than the last complete listing), a 404 twice in a row.
ALTER TABLE posts ADD COLUMN sent_fingerprint TEXT;
ALTER TABLE posts ADD COLUMN listed_at TEXT;
ALTER TABLE posts ADD COLUMN not_found_count INTEGER NOT NULL DEFAULT 0;
UPDATE posts SET sent_fingerprint = (SELECT MAX(fingerprint) FROM sends WHERE sends.post_id = posts.id);
CREATE TABLE site_listing (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    complete_at TEXT NOT NULL
);
-- Deletions a static site can follow (`/api/deleted.json`): a mention that leaves the
-- published set (deleted, rejected, blocked) is recorded with when; published again, it is
-- not deleted any more. Kept by the database in the transaction that changes the status.
CREATE TABLE unpublished (
    mention_id   INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    target       TEXT NOT NULL,
    deleted_at   TEXT NOT NULL
);
CREATE INDEX unpublished_at ON unpublished (deleted_at);
INSERT INTO unpublished (mention_id, source, target, deleted_at)
    SELECT id, source, target, updated_at FROM mentions
    WHERE status IN ('deleted', 'rejected') AND verified_at IS NOT NULL;
CREATE TRIGGER unpublished_on_status AFTER UPDATE OF status ON mentions
WHEN OLD.status = 'verified' AND NEW.status != 'verified'
BEGIN
    INSERT OR REPLACE INTO unpublished (mention_id, source, target, deleted_at)
    VALUES (NEW.id, NEW.source, NEW.target, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
CREATE TRIGGER unpublished_on_delete AFTER DELETE ON mentions WHEN OLD.status = 'verified'
BEGIN
    INSERT OR REPLACE INTO unpublished (mention_id, source, target, deleted_at)
    VALUES (OLD.id, OLD.source, OLD.target, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
CREATE TRIGGER republished AFTER UPDATE OF status ON mentions
WHEN NEW.status = 'verified' AND OLD.status != 'verified'
BEGIN
    DELETE FROM unpublished WHERE mention_id = NEW.id;
END;
-- One reaction, one mention (see store/conversations.rs): every address a verified mention was
-- seen at — its source, where it redirected, the original it names, its copies — so that the
-- same reaction arriving through another channel is recognised.
CREATE TABLE mention_urls (
    mention_id INTEGER NOT NULL,
    url        TEXT NOT NULL,
    url_key    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('source', 'original', 'copy')),
    PRIMARY KEY (mention_id, url_key)
) WITHOUT ROWID;
CREATE INDEX mention_urls_key ON mention_urls (url_key);
-- The blogger's accounts as the site's home page names them (rel="me"), read at each crawl.
CREATE TABLE site_profiles (url TEXT PRIMARY KEY);
-- Queue mode is not silent: a mention that starts waiting for approval is an event too
-- (WordPress mailed "Please moderate"), queued in the transaction that holds it.
CREATE TRIGGER mention_held AFTER UPDATE OF status ON mentions
WHEN NEW.status = 'held' AND OLD.status != 'held' AND EXISTS (SELECT 1 FROM notify_channels)
BEGIN
    INSERT INTO notifications (mention_id, event, created_at)
    VALUES (NEW.id, 'held', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
"#,
    r#"
-- The fleet (see store/fleet.rs): the processes serving this store, each fetch's slot on its
-- host and each host's requests a minute (so that limits hold for all processes together), and
-- each schedule's due times claimed once.
CREATE TABLE instances (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    roles        TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    stopped_at   TEXT,
    checked      INTEGER NOT NULL DEFAULT 0,
    requests     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE host_slots (
    host   TEXT NOT NULL,
    slot   INTEGER NOT NULL,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL,
    PRIMARY KEY (host, slot)
);
CREATE TABLE host_minutes (
    host   TEXT NOT NULL,
    minute TEXT NOT NULL,
    spent  INTEGER NOT NULL,
    PRIMARY KEY (host, minute)
);
CREATE TABLE schedule_claims (
    schedule   TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    instance   TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (schedule, due_at)
);
"#,
    r#"
-- The operator's sessions (see store/sessions.rs): every process of a fleet knows them.
CREATE TABLE admin_sessions (
    token_digest TEXT PRIMARY KEY,
    csrf         TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
"#,
    r#"
-- The operator's list of every mention, newest first, pages through an index instead of
-- sorting the whole table for each page (0.9 s a page at 1,000,000 mentions).
CREATE INDEX mentions_seen ON mentions (first_seen, id);
"#,
    r#"
-- Many sites (see store/sites.rs): every post, mention and decision is filed under one site
-- ('' until filed); a session and a notification channel may be one site's.
ALTER TABLE posts ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE mentions ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_sessions ADD COLUMN site TEXT;
ALTER TABLE notify_channels ADD COLUMN site TEXT NOT NULL DEFAULT '';
CREATE INDEX posts_site ON posts (site);
CREATE INDEX mentions_site ON mentions (site, status, first_seen, id);
CREATE INDEX decisions_site ON decisions (site, at);
-- Verification jobs carry their mention's site: leasing goes round the sites with work due,
-- so one site's flood does not hold back another site's single ping.
ALTER TABLE jobs ADD COLUMN site TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_site_due ON jobs (kind, site, next_try, subject);
-- What a crawl of each site read: when its listing was last complete, and the accounts its
-- home page names (rel=me); a store from before sites has them under ''.
CREATE TABLE site_listings (site TEXT PRIMARY KEY, complete_at TEXT NOT NULL);
INSERT INTO site_listings (site, complete_at) SELECT '', complete_at FROM site_listing;
CREATE TABLE own_profiles (site TEXT NOT NULL, url TEXT NOT NULL, PRIMARY KEY (site, url));
INSERT INTO own_profiles (site, url) SELECT '', url FROM site_profiles;
"#,
    r#"
-- Each site's published version beside the whole store's (see publish/http.rs): a site's feeds
-- and API (`?site=`) keep their ETags while other sites change.
CREATE TABLE site_versions (
    site       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    changed_at TEXT NOT NULL
);
DROP TRIGGER published_update;
DROP TRIGGER published_insert;
DROP TRIGGER published_delete;
DROP TRIGGER published_post_titles;
CREATE TRIGGER published_update AFTER UPDATE ON mentions
WHEN (OLD.status = 'verified') != (NEW.status = 'verified')
  OR (NEW.status = 'verified' AND OLD.updated_at IS NOT NEW.updated_at)
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
    INSERT OR IGNORE INTO site_versions (site, version, changed_at) VALUES (NEW.site, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
    UPDATE site_versions SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE site = NEW.site;
END;
CREATE TRIGGER published_insert AFTER INSERT ON mentions WHEN NEW.status = 'verified'
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
    INSERT OR IGNORE INTO site_versions (site, version, changed_at) VALUES (NEW.site, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
    UPDATE site_versions SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE site = NEW.site;
END;
CREATE TRIGGER published_delete AFTER DELETE ON mentions WHEN OLD.status = 'verified'
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
    INSERT OR IGNORE INTO site_versions (site, version, changed_at) VALUES (OLD.site, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
    UPDATE site_versions SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE site = OLD.site;
END;
CREATE TRIGGER published_post_titles AFTER UPDATE OF title, url ON posts
WHEN OLD.title IS NOT NEW.title OR OLD.url IS NOT NEW.url
BEGIN
    UPDATE publish_state SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
    INSERT OR IGNORE INTO site_versions (site, version, changed_at) VALUES (NEW.site, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
    UPDATE site_versions SET version = version + 1, changed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE site = NEW.site;
END;
"#,
    r#"
-- A post's mentions in the order they came, whatever their status, with the status in the index:
-- the publishing listing of a post (its verified ones) and the operator's listing of a post (all
-- of them) both walk it in order. The index it replaces held verified mentions only, so the
-- operator's listing of a post with 100,000 mentions walked the whole store by date, looking
-- for them (PostgreSQL, a million mentions: 0.6 s to 19 s a page). (PostgreSQL's is partial,
-- see there; SQLite, which plans each statement from the indexes alone, would then pass it over
-- for the publishing listing.)
DROP INDEX mentions_target_published;
CREATE INDEX mentions_target_seen ON mentions (target_key, first_seen, id, status);
"#,
];
/// Where a store lives: a SQLite file, or a PostgreSQL database.
#[derive(Clone, PartialEq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres {
        /// `postgres://…` (never logged: it may hold a password).
        url: String,
        /// Connections at most.
        pool_size: usize,
    },
}

impl std::fmt::Debug for Location {
    /// PostgreSQL's URL may hold a password: it is not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Location::Postgres { pool_size, .. } => write!(f, "Postgres(pool_size {pool_size})"),
        }
    }
}

/// The store: on SQLite one writer and a few readers; on PostgreSQL one pool for both.
pub struct Store {
    location: Location,
    /// SQLite's one writer (`None` on PostgreSQL: writes take a pooled connection).
    writer: Option<Mutex<Conn>>,
    pool: Mutex<Vec<Conn>>,
    /// The sites served: what each post, mention and decision written is filed under.
    routes: std::sync::RwLock<std::sync::Arc<crate::sites::Routes>>,
    /// Sites with rows here that are no longer configured (see [`Store::removed_sites`]).
    removed_sites: std::sync::RwLock<Vec<String>>,
    /// The blocks, profiles and posts kept in memory on PostgreSQL (see `changes`).
    kept: changes::Kept,
}

/// A new mention's status token: the unguessable name of its status page (128 random bits).
pub(super) fn new_status_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source answers");
    hex::encode(bytes)
}

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character taken literally, for
/// `LIKE ? ESCAPE '\'`.
pub(super) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A LIKE pattern matching values that contain `text` (see [`like_escape`]).
pub(super) fn like_containing(text: &str) -> String {
    format!("%{}%", like_escape(text.trim()))
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit is synced to disk before it returns, so an acknowledged 201 survives
    // an OS crash or a power loss too, not only a killed process (NORMAL in WAL mode may lose
    // the last transactions then). The group commit is what makes this cheap: one sync per
    // batch of writes, not one per request (`benches/webmention_accept.sh`, figures in README).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement and savepoint journals (every unit of a group commit is a savepoint) stay in
    // memory: by default they spill to a temporary file past 64 KiB, and a verified mention's
    // pages cross that, so each commit wrote them to disk once more for nothing.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // `rfc3339_text(t)`: a time of the store as RFC 3339 text, for SQL that orders a time
    // beside a text a source gave (a post's `published`, else when it was first seen). Times
    // are that text here already; PostgreSQL's function formats its `timestamptz`.
    conn.create_scalar_function(
        "rfc3339_text",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| ctx.get::<rusqlite::types::Value>(0),
    )?;
    Ok(())
}

/// What a migration does, from its first comment line ("schema" when it has none).
fn migration_summary(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("--"))
        .map(|l| l.split(": ").next().unwrap_or(l).trim().to_string())
        .unwrap_or_else(|| "schema".into())
}

/// The migrations of `engine`'s schema, oldest first.
fn migrations(engine: db::Engine) -> &'static [&'static str] {
    match engine {
        db::Engine::Sqlite => MIGRATIONS,
        db::Engine::Postgres => postgres::MIGRATIONS,
    }
}

impl Location {
    /// A new connection to the store.
    fn connect(&self) -> StoreResult<Conn> {
        match self {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                configure(&conn)?;
                Ok(Conn::Lite(conn))
            }
            Location::Postgres { url, .. } => Ok(Conn::Pg(db::PgConn::connect(
                url,
                std::time::Duration::from_secs(10),
            )?)),
        }
    }

    /// Pooled connections kept open at most (SQLite: readers, besides the writer).
    fn pooled(&self) -> usize {
        match self {
            Location::Sqlite(_) => 8,
            Location::Postgres { pool_size, .. } => (*pool_size).max(1),
        }
    }
}

/// The schema version `conn`'s database is at (0: empty).
fn schema_version(conn: &Conn) -> StoreResult<i64> {
    match conn {
        Conn::Lite(c) => Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?),
        Conn::Pg(_) => {
            let exists: bool = conn.query_row(
                "SELECT to_regclass('schema_version') IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(0);
            }
            Ok(conn
                .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })?
                .unwrap_or(0))
        }
    }
}

/// Applies `conn`'s pending migrations, each in a transaction of its own under the store's
/// migration lock, so that of two processes starting together one migrates and the other
/// finds it done.
fn migrate(conn: &Conn) -> StoreResult<()> {
    let all = migrations(conn.engine());
    let start = schema_version(conn)?;
    for (i, sql) in all.iter().enumerate().skip(start.max(0) as usize) {
        let tx = conn.transaction()?;
        if let Conn::Pg(_) = conn {
            // A lock held until this transaction ends; the number is backfeed's own. The
            // version table is created under it too (two processes creating it at once would
            // collide in PostgreSQL's catalogue).
            // A migration may take long on a big store, and another process's may too: this
            // transaction waits and runs without the session's caps.
            tx.execute_batch("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")?;
            tx.query_row("SELECT pg_advisory_xact_lock(4242424201)", [], |_| Ok(()))?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            )?;
        }
        if schema_version(&tx)? > i as i64 {
            tx.commit()?;
            continue;
        }
        tx.execute_batch(sql)?;
        match conn {
            Conn::Lite(c) => c.pragma_update(None, "user_version", i as i64 + 1)?,
            Conn::Pg(_) => {
                tx.execute("DELETE FROM schema_version", [])?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [i as i64 + 1],
                )?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Store> {
        Store::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the store at `location` (creating a SQLite file if needed) and applies pending
    /// migrations.
    pub fn open_at(location: &Location) -> StoreResult<Store> {
        if let Location::Sqlite(path) = location
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = location.connect()?;
        migrate(&conn)?;
        let (writer, pool) = match location {
            Location::Sqlite(_) => (Some(Mutex::new(conn)), Vec::new()),
            Location::Postgres { .. } => (None, vec![conn]),
        };
        Ok(Store {
            location: location.clone(),
            writer,
            pool: Mutex::new(pool),
            routes: Default::default(),
            removed_sites: Default::default(),
            kept: Default::default(),
        })
    }

    /// Which engine the store runs on.
    pub fn engine(&self) -> db::Engine {
        match self.location {
            Location::Sqlite(_) => db::Engine::Sqlite,
            Location::Postgres { .. } => db::Engine::Postgres,
        }
    }

    /// The schema migrations the store at `location` has not had yet, by number and what each
    /// does (its first comment line), without applying them (`backfeed migrate --check`).
    pub fn pending_migrations(location: &Location) -> StoreResult<Vec<(usize, String)>> {
        let (version, engine) = match location {
            Location::Sqlite(path) if !path.exists() => (0, db::Engine::Sqlite),
            Location::Sqlite(path) => {
                let c = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                (
                    c.pragma_query_value(None, "user_version", |r| r.get(0))?,
                    db::Engine::Sqlite,
                )
            }
            Location::Postgres { .. } => {
                (schema_version(&location.connect()?)?, db::Engine::Postgres)
            }
        };
        Ok(migrations(engine)
            .iter()
            .enumerate()
            .skip(version.max(0) as usize)
            .map(|(i, sql)| (i + 1, migration_summary(sql)))
            .collect())
    }

    /// A connection from `slot` that is still alive (PostgreSQL's break when the server
    /// restarts: the next call reconnects instead of failing for ever).
    fn alive(&self, conn: Conn) -> StoreResult<Conn> {
        if conn.is_closed() {
            self.location.connect()
        } else {
            Ok(conn)
        }
    }

    /// Runs `f` where this store writes; its database error becomes a [`StoreError`]. SQLite:
    /// on the one writer, so a process's writes take turns. PostgreSQL: on a pool connection of
    /// its own, in parallel with the others.
    pub(super) fn write<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> StoreResult<T> {
        let Some(writer) = &self.writer else {
            return self.on_pool(f);
        };
        let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_closed() {
            *conn = self.location.connect()?;
        }
        f(&mut conn)
    }

    /// Runs `f` on a reader connection; its database error becomes a [`StoreError`].
    pub(super) fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> StoreResult<T> {
        self.on_pool(|c| f(c))
    }

    /// Runs `f` on a connection from the pool (a new one when none is free; kept afterwards
    /// while the pool has room).
    fn on_pool<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> StoreResult<T> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => self.alive(c)?,
            None => self.location.connect()?,
        };
        let result = f(&mut conn);
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.location.pooled() {
            pool.push(conn);
        }
        result
    }

    /// How [`GroupCommit`] commits on this engine. SQLite: one writer, and big groups (one disk
    /// sync each). PostgreSQL: what a receiver waits for (its enqueue, its decision) has
    /// committers of its own, so an acknowledgement never queues behind the worker's outcomes:
    /// two, in groups of up to sixteen; the worker's leases one (a lease waits for no group of
    /// outcomes: see `GroupCommit`); its outcomes one, in groups of up to 64. Measured
    /// (`benches/webmention_accept.sh`, intake while verifying, and `benches/e2e_verify.sh`):
    /// against four and four committers (2,723 against 1,884 accepts/s, p99 28 against 39 ms;
    /// 811 against 739 pages/s end to end) — more committers made smaller
    /// groups, each a transaction of its own (a BEGIN, a COMMIT and a disk sync more), and
    /// competed for the same two cores. (Four and four were best while every statement cost two
    /// thread switches; see `pg_socket`.) On PostgreSQL a group's verified outcomes and its
    /// candidates to queue are written together (see `together`: a statement is a round trip
    /// there); on SQLite a statement is a call within the process, and each is written alone.
    fn commit_plan(&self) -> queue::CommitPlan {
        use queue::{CommitPlan, Committers};
        match self.location {
            Location::Sqlite(_) => CommitPlan {
                writes: Committers {
                    count: 1,
                    max_group: 256,
                    together: false,
                },
                intake: None,
                leasing: None,
            },
            Location::Postgres { .. } => CommitPlan {
                writes: Committers {
                    count: 1,
                    max_group: 64,
                    together: true,
                },
                intake: Some(Committers {
                    count: 2,
                    max_group: 16,
                    together: true,
                }),
                leasing: Some(Committers {
                    count: 1,
                    max_group: 8,
                    together: false,
                }),
            },
        }
    }
}
