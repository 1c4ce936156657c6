//! The command line: parse arguments, load the config, run one command, map the result to an
//! exit status (0 success, 1 runtime failure, 2 bad usage or configuration). This is the only
//! module that prints for humans; everything it shows comes from the library's plain values.

use crate::config::Config;
use crate::model::{Kind, OrLog, Status, match_key};
use crate::pipeline::Context;
use crate::shutdown::Shutdown;
use crate::store::MentionFilter;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

const ABOUT: &str = "backfeed collects the links to your blog's posts — pingbacks, trackbacks, \
webmentions, and mentions it finds itself in watched feeds, social sites and referrer logs — \
verifies each one, and publishes them as feeds a site build can pull.";

const AFTER_HELP: &str = "\
Getting started:
  backfeed --config config/backfeed.toml serve     run the daemon (HTTP + schedules)
  backfeed crawl                                   one crawl now, with a summary
  backfeed submit https://friend.example/post https://blog.example/2024/hello
  backfeed mentions --status held                  what waits for approval
  backfeed log --since 1h                          why each candidate was accepted or refused
  backfeed export --out public/mentions            static feeds for a site build

The config path comes from --config, else $BACKFEED_CONFIG, else config/backfeed.toml.";

#[derive(Parser, Debug)]
#[command(name = "backfeed", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(
        long,
        global = true,
        env = "BACKFEED_CONFIG",
        default_value = "config/backfeed.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// One part of `serve`'s work (`--roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Http,
    Worker,
    Schedule,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: HTTP receivers and feeds, the verification worker and the cron schedules.
    /// Stops cleanly on SIGTERM or SIGINT.
    ///
    /// On PostgreSQL any number of processes may serve one store, each with some of the roles
    /// (e.g. `serve --roles http` behind a load balancer and `serve --roles worker,schedule`
    /// elsewhere); together they behave as one daemon. `status` lists them.
    Serve {
        /// What this process does: `http` (the listeners), `worker` (verification and
        /// notification deliveries), `schedule` (the cron schedules: crawls, which also send
        /// pings, re-verification, the digest). Comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "http,worker,schedule")]
        roles: Vec<Role>,
    },
    /// One full cycle now: refresh own posts, poll every source, verify every pending candidate.
    Crawl,
    /// Re-fetch every stored mention now: edits update it, 410 or a lost link deletes it.
    Reverify,
    /// Enqueue one candidate by hand and verify it now (recorded as a webmention: one sent by
    /// hand).
    Submit {
        /// The page that links (the source).
        source: String,
        /// Your post it links to (the target).
        target: String,
    },
    /// Your own posts, with published mention counts.
    Posts {
        /// Only this site's (its name; see `status`). Every site's when left out.
        #[arg(long)]
        site: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stored mentions, newest first.
    Mentions {
        /// Only this site's (its name; see `status`). Every site's when left out.
        #[arg(long)]
        site: Option<String>,
        /// Only mentions of this post.
        #[arg(long)]
        target: Option<String>,
        /// pending, verified, held, rejected or deleted.
        #[arg(long)]
        status: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish a held mention (moderation mode "queue"), or restore a rejected one.
    Approve {
        /// The mention's id (see `backfeed mentions`).
        id: i64,
    },
    /// Reject a mention by hand; later pings for it stay rejected until approved.
    Reject {
        /// The mention's id (see `backfeed mentions`).
        id: i64,
    },
    /// Refuse sources on DOMAIN and its subdomains, and hide their mentions (reversible).
    Block {
        /// The domain, e.g. spam.example (not needed with --list).
        #[arg(required_unless_present = "list")]
        domain: Option<String>,
        /// Lift the block instead; hidden mentions come back.
        #[arg(long)]
        remove: bool,
        /// List blocked domains.
        #[arg(long, conflicts_with = "remove")]
        list: bool,
    },
    /// The decision log: each candidate seen and why it was accepted, rejected, updated or deleted.
    Log {
        /// Only this site's (its name; see `status`). Every site's when left out.
        #[arg(long)]
        site: Option<String>,
        /// How far back: 30s, 15m, 2h, 7d, 2w.
        #[arg(long, default_value = "24h")]
        since: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Store counts, queue depth, schedules, failing watched URLs.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the feeds as static files under DIR for a site build; or, with `--format jsonl`,
    /// a lossless backup of every mention, block and decision to FILE (`import` restores it).
    Export {
        /// Only this site's (its name; see `status`). Every site's when left out.
        #[arg(long)]
        site: Option<String>,
        /// The directory (static files) or the file (jsonl) to write.
        #[arg(long)]
        out: PathBuf,
        /// `static`: the feeds for a site build; `jsonl`: the backup.
        #[arg(long, default_value = "static", value_parser = ["static", "jsonl"])]
        format: String,
    },
    /// Move history in: WordPress's export (WXR), webmention.io's JF2, or a backfeed backup.
    /// Linkbacks become mentions of the posts they belong to; the same file twice changes nothing.
    Import {
        /// The file to read.
        file: PathBuf,
        /// wxr, webmention.io or jsonl; guessed from the file's extension when left out.
        #[arg(long)]
        format: Option<String>,
        /// FROM=TO: rewrite URL prefixes (a blog that moved domain or path); repeatable.
        #[arg(long)]
        rewrite: Vec<String>,
        /// Let reverify check imported mentions like any other (by default history is kept as
        /// it came: old sources are often gone).
        #[arg(long)]
        verify: bool,
        /// Count what would be imported; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Ping the pages your posts link to (Webmention, else Pingback, else Trackback): for the
    /// posts whose content changed since the last send, or the ones named. With
    /// `[send] enabled = true` every crawl ends with this.
    Send {
        /// Only these posts (their URLs); all posts when none are given.
        posts: Vec<String>,
        /// Discover the endpoints and show what would be sent; send and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Send again for every post and link, changed or not.
        #[arg(long)]
        force: bool,
        /// One JSON array, the shape of `backfeed sent --json`.
        #[arg(long)]
        json: bool,
    },
    /// Deliver the webhooks and mail that are due now (`serve` and `crawl` do it by themselves);
    /// with `--digest`, send the mail digest now.
    Notify {
        /// Send the mail digest now (`[notify.email] digest`), with what is new since the last.
        #[arg(long)]
        digest: bool,
    },
    /// Set up in one step: read your site's home page (its feeds, sitemaps, rel="me" accounts
    /// and title), write a commented configuration, and print the tags to paste and what to do
    /// next. Needs no configuration to run.
    Init {
        /// Your blog's address, e.g. https://blog.example/
        #[arg(long)]
        site: String,
        /// Where to write the configuration (default: the --config path).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Overwrite a file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Bring the store's schema up to this version (`serve` and every command do it at start,
    /// under a lock, so two processes starting together migrate once).
    Migrate {
        /// List the pending migrations and apply none: exit 1 when there are any (for a
        /// deploy script that wants to know before it starts the new version).
        #[arg(long)]
        check: bool,
    },
    /// What was sent for your posts: per link, the protocol, endpoint and answer.
    Sent {
        /// Only this site's (its name; see `status`). Every site's when left out.
        #[arg(long)]
        site: Option<String>,
        /// Only what was sent for this post.
        #[arg(long)]
        post: Option<String>,
        /// A JSON array of {source, target, protocol, endpoint, status, http_status, reason,
        /// sent_at, attempts}.
        #[arg(long)]
        json: bool,
    },
    /// Print the tags and headers your pages need so others can ping you.
    Snippet {
        /// A post URL, to include its Trackback block.
        post_url: Option<String>,
        /// The site the tags are for: its feeds and API, by name.
        #[arg(long)]
        site: Option<String>,
    },
    /// Delete every post, mention and decision of a site removed from the configuration
    /// (removing it stops its crawls and publishing; its data stays until this).
    ForgetSite {
        /// The site's name, as `status` lists it.
        name: String,
        /// Yes, delete it: there is no undo (a `backfeed export --format jsonl` first keeps a copy).
        #[arg(long)]
        yes: bool,
    },
}

/// `backfeed init --site URL [--out FILE] [--force]`.
fn init(site: &str, out: &std::path::Path, force: bool) -> Result<(), Failure> {
    let site = url::Url::parse(site.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Failure::usage(format!(
                "--site {site:?}: give your blog's address, e.g. https://blog.example/"
            ))
        })?;
    if out.exists() && !force {
        return Err(Failure::usage(format!(
            "{} exists already: choose another with --out, or replace it with --force",
            out.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the runtime: {e}")))?;
    let facts = runtime
        .block_on(crate::init::discover(&site))
        .map_err(|e| Failure::runtime(format!("{e}; check the address, or write the configuration by hand from config/backfeed.toml")))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    let text = crate::init::config_text(&site, &facts);
    std::fs::write(out, &text)
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", out.display())))?;
    println!("Wrote {} for {site}:", out.display());
    println!(
        "  feeds {} · sitemaps {} · your accounts (rel=me) {}",
        facts.feeds.len(),
        facts.sitemaps.len(),
        facts.rel_me.len()
    );
    if facts.feeds.is_empty() && facts.sitemaps.is_empty() {
        println!("  No feed or sitemap was found: add one to [site] feeds before the first crawl.");
    }
    println!();
    // The tags exactly as `backfeed snippet` prints them for this configuration (it warns
    // while public_url is still a loopback address).
    let config = Config::parse(&text, out)
        .map_err(|e| Failure::runtime(format!("the written configuration does not load: {e}")))?;
    snippet(&config, None, None)?;
    println!();
    println!("Next:");
    println!(
        "  1. Set [server] public_url in {} to the address others reach backfeed at (HTTPS).",
        out.display()
    );
    println!(
        "  2. backfeed --config {} snippet   (the tags with your public_url)",
        out.display()
    );
    println!(
        "  3. backfeed --config {} serve     (or install config/backfeed.service)",
        out.display()
    );
    Ok(())
}

/// `backfeed migrate [--check]`.
fn migrate(config: &Config, check: bool) -> Result<(), Failure> {
    let location = &config.store.location;
    let cannot = |e: crate::store::StoreError| {
        Failure::runtime(format!(
            "cannot read the store {}: {e}",
            config.store.describe()
        ))
    };
    let pending = crate::store::Store::pending_migrations(location).map_err(cannot)?;
    if check {
        if pending.is_empty() {
            println!("no pending migrations: the store is up to date");
            return Ok(());
        }
        for (number, what) in &pending {
            println!("pending migration {number}: {what}");
        }
        return Err(Failure {
            code: 1,
            message: format!(
                "{} pending migration{}: run `backfeed migrate` (or start the new version)",
                pending.len(),
                if pending.len() == 1 { "" } else { "s" }
            ),
        });
    }
    let store = crate::store::Store::open_at(location).map_err(cannot)?;
    // Asked for by name, the data repairs run whether or not the schema moved.
    let repaired = crate::import::repair_escaped_texts(&store).map_err(cannot)?;
    if repaired > 0 {
        println!("decoded HTML escapes in the titles and names of {repaired} imported mentions");
    }
    match pending.len() {
        0 => println!("no pending migrations: the store is up to date"),
        n => println!(
            "applied {n} migration{}: the store is at version {}",
            if n == 1 { "" } else { "s" },
            pending.last().map_or(0, |(number, _)| *number)
        ),
    }
    Ok(())
}

/// The data repairs a store written by an older version needs, run as it is upgraded: the
/// HTML escapes WordPress left in imported titles and names, decoded.
fn repair_after_upgrade(store: &crate::store::Store) {
    match crate::import::repair_escaped_texts(store) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            mentions = n,
            "decoded HTML escapes in the titles and names of imported mentions"
        ),
        Err(e) => tracing::warn!(error = %e, "imported titles and names not repaired"),
    }
}

/// A command's failure: the message and the exit status.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::runtime(format!("store error: {e}"))
    }
}

fn init_tracing(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// `backfeed mentions --json | head`: when the reader goes away, end quietly as Unix tools do
/// (the default SIGPIPE action), instead of panicking on the next `println!`. Only for
/// commands that print and do no network work, so no socket write can raise the signal.
fn quiet_on_closed_pipe() {
    // SAFETY: resets one signal's disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Parses the command line, runs, and returns the exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } | Command::Crawl | Command::Reverify => "backfeed=info",
        _ => "backfeed=warn",
    };
    init_tracing(cli.log_format, default_level);
    if !matches!(
        cli.command,
        Command::Serve { .. }
            | Command::Crawl
            | Command::Reverify
            | Command::Submit { .. }
            | Command::Send { .. }
            | Command::Notify { .. }
            | Command::Init { .. }
    ) {
        quiet_on_closed_pipe();
    }
    if let Command::Init { site, out, force } = &cli.command {
        let out = out.clone().unwrap_or_else(|| cli.config.clone());
        return match init(site, &out, *force) {
            Ok(()) => 0,
            Err(f) => {
                eprintln!("backfeed: {}", f.message);
                f.code
            }
        };
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("backfeed: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("backfeed: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(dispatch(cli.command, config)) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("backfeed: {}", f.message);
            f.code
        }
    }
}

/// Usage errors that need no store: answered before the store is created or opened.
fn check_usage(command: &Command) -> Result<(), Failure> {
    if let Command::Mentions {
        status: Some(s), ..
    } = command
        && Status::parse(s).is_none()
    {
        return Err(Failure::usage(format!(
            "--status {s:?}: use pending, verified, held, rejected or deleted"
        )));
    }
    if let Command::Log { since, .. } = command
        && parse_duration(since).is_none()
    {
        return Err(Failure::usage(format!(
            "--since {since:?}: use e.g. 30m, 2h, 7d"
        )));
    }
    Ok(())
}

async fn dispatch(command: Command, config: Config) -> Result<(), Failure> {
    check_usage(&command)?;
    if let Command::Snippet { post_url, site } = &command {
        return snippet(&config, post_url.as_deref(), site.as_deref());
    }
    check_site(&command, &config)?;
    if let Command::Migrate { check } = command {
        return migrate(&config, check);
    }
    let store_name = config.store.describe();
    if matches!(command, Command::Serve { .. }) {
        crate::store::set_owner_role("serve");
    }
    // A store that an older version wrote (its schema moves forward as it opens) gets its
    // data repairs once, here, not on every start.
    let upgrading = crate::store::Store::pending_migrations(&config.store.location)
        .is_ok_and(|pending| !pending.is_empty());
    let ctx = Context::new(config)
        .map_err(|e| Failure::runtime(format!("cannot open the store {store_name}: {e}")))?;
    if upgrading {
        repair_after_upgrade(&ctx.store);
    }
    let ctx = Arc::new(ctx);
    match command {
        Command::Serve { roles } => serve(ctx, &roles).await,
        Command::Crawl => {
            let bar = progress_bar("crawl");
            // A crawl by hand is a crawl: `status` shows it as the last one.
            let summary =
                crate::schedule::run_once_with(&ctx, crate::schedule::Job::Crawl, &mut |_| {
                    bar.inc(1)
                })
                .await;
            bar.finish_and_clear();
            println!("crawl: {}", summary.line());
            if summary.errors + summary.failing > 0 {
                return Err(Failure::runtime(format!(
                    "crawl finished with {} errors and {} failing URLs: see `backfeed status`",
                    summary.errors, summary.failing
                )));
            }
            Ok(())
        }
        Command::Reverify => {
            let bar = progress_bar("reverify");
            let summary = crate::sources::reverify(&ctx, 0, &mut |_| bar.inc(1)).await;
            bar.finish_and_clear();
            println!("reverify: {}", summary.line());
            Ok(())
        }
        Command::Submit { source, target } => submit(&ctx, &source, &target).await,
        Command::Posts { json, site } => posts(&ctx, json, site.as_deref()),
        Command::Mentions {
            target,
            status,
            json,
            site,
        } => mentions(&ctx, target, status, json, site),
        Command::Approve { id } => moderate(&ctx, id, true),
        Command::Reject { id } => moderate(&ctx, id, false),
        Command::Block {
            domain,
            remove,
            list,
        } => block(&ctx, domain.as_deref(), remove, list),
        Command::Log { since, json, site } => log(&ctx, &since, json, site.as_deref()),
        Command::Status { json } => status(&ctx, json),
        Command::Export {
            out, format, site, ..
        } if format == "jsonl" => {
            if site.is_some() {
                return Err(Failure::usage(
                    "--site: a jsonl backup holds the whole store (every site); --site works with the static export".to_string(),
                ));
            }
            let written = write_backup(&ctx, &out).map_err(|e| {
                Failure::runtime(format!("backup to {} failed: {e}", out.display()))
            })?;
            println!("backed up {written} records to {}", out.display());
            Ok(())
        }
        Command::Import {
            file,
            format,
            rewrite,
            verify,
            dry_run,
            json,
        } => import(
            &ctx,
            &file,
            format.as_deref(),
            &rewrite,
            verify,
            dry_run,
            json,
        ),
        Command::Export { out, site, .. } => {
            let sites = ctx.sites();
            let named = site.as_deref().and_then(|name| sites.named(name));
            let names = ctx.feed_names(named);
            let summary = crate::publish::export(&ctx.store, names.site(), site.as_deref(), &out)
                .map_err(|e| {
                Failure::runtime(format!("export to {} failed: {e}", out.display()))
            })?;
            println!(
                "exported {} mentions of {} posts in {} files to {}",
                summary.mentions,
                summary.posts,
                summary.files,
                out.display()
            );
            Ok(())
        }
        Command::Send {
            posts,
            dry_run,
            force,
            json,
        } => {
            let opts = crate::send::SendOptions {
                posts,
                dry_run,
                force,
            };
            // `send` learns the site's posts itself (as a crawl would), so a first `send`
            // right after setting up sends for every post in the feeds.
            let mut listing = crate::sources::Summary::default();
            crate::sources::own_posts::refresh_posts(&ctx, &mut listing).await;
            if ctx.store.all_posts()?.is_empty() {
                return Err(Failure::runtime(format!(
                    "no posts known: none found in [site] feeds or sitemaps ({} errors reading them); see `backfeed status`",
                    listing.errors
                )));
            }
            let bar = progress_bar("send");
            let done = crate::send::send(&ctx, &opts, &mut |_| bar.inc(1))
                .await
                .map_err(|e| Failure::runtime(e.to_string()))?;
            bar.finish_and_clear();
            if json {
                return print_json(&done);
            }
            print_sends(&done, dry_run);
            Ok(())
        }
        Command::Notify { digest } => {
            let done = if digest {
                crate::notify::send_digest(&ctx)
                    .await
                    .map_err(|e| Failure::runtime(format!("digest not sent: {e}")))?
            } else {
                crate::notify::deliver_due(&ctx).await
            };
            println!(
                "notify: delivered {} · failed {} (failures are retried)",
                done.delivered, done.failed
            );
            // What still waits, on which channel, until when, and why.
            for waiting in ctx.store.pending_deliveries()? {
                if waiting.pending == 0 {
                    continue;
                }
                println!(
                    "waiting: {} {} · next try {}{}",
                    ctx.cfg.notify.channel_label(&waiting.channel, &ctx.sites()),
                    waiting.pending,
                    waiting.next_try.as_deref().unwrap_or("at the next run"),
                    waiting
                        .last_error
                        .as_deref()
                        .map(|e| format!(" · last error: {e}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Sent { post, json, site } => {
            let done = ctx.store.sends(post.as_deref(), site.as_deref(), -1, 0)?;
            if json {
                return print_json(&done);
            }
            print_sends(&done, false);
            Ok(())
        }
        Command::ForgetSite { name, yes } => forget_site(&ctx, &name, yes),
        Command::Snippet { .. } | Command::Migrate { .. } | Command::Init { .. } => {
            unreachable!("handled before the store is opened")
        }
    }
}

fn progress_bar(what: &str) -> indicatif::ProgressBar {
    if !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg}: {pos} candidates checked ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

async fn serve(ctx: Arc<Context>, roles: &[Role]) -> Result<(), Failure> {
    let has = |role: Role| roles.contains(&role);
    let listen = ctx.cfg.server.listen;
    let listener = if has(Role::Http) {
        Some(tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            Failure::runtime(format!(
                "cannot listen on {listen} ({e}); change [server] listen"
            ))
        })?)
    } else {
        None
    };
    // One `serve` per SQLite store: holding its lock, this process knows any lease a `serve`
    // holds belongs to one that is gone (crashed), and takes those back now; leases of commands
    // run by hand are left to expire.
    // On PostgreSQL several processes share the store by design: no lock, and leases of a
    // process that stopped are taken over as they expire.
    let serve_lock = match &ctx.cfg.store.location {
        crate::store::Location::Sqlite(path) => {
            Some(crate::store::ServeLock::acquire(path, "serve").map_err(Failure::runtime)?)
        }
        crate::store::Location::Postgres { .. } => None,
    };
    let shutdown = Shutdown::new();
    let released = if serve_lock.is_some() {
        ctx.store.release_leases_of_dead_serve()?
    } else {
        0
    };
    for warning in crate::status::config_warnings(&ctx.cfg) {
        tracing::warn!("{warning}");
    }
    let (depth, _) = ctx.store.queue_depth()?;
    let cfg = &ctx.cfg;
    let sources: Vec<&str> = [
        ("hackernews", cfg.sources.hackernews.enabled),
        ("reddit", cfg.sources.reddit.enabled),
        ("bluesky", cfg.sources.bluesky.enabled),
        ("mastodon", cfg.sources.mastodon.enabled),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    // The roles by their command-line names, in one order however they were given.
    let role_names: Vec<String> = Role::value_variants()
        .iter()
        .filter(|role| has(**role))
        .filter_map(|role| Some(role.to_possible_value()?.get_name().to_string()))
        .collect();
    let instance = cfg.server.instance_name.clone();
    ctx.store
        .register_instance(&instance, &role_names.join(","), &crate::store::hostname())?;
    tracing::info!(
        %instance, roles = %role_names.join(","),
        %listen, public_url = %cfg.server.public_url, sites = cfg.sites.list.len(),
        site = %cfg.sites.first().map_or(String::new(), |s| s.base_url.to_string()),
        store = %cfg.store.describe(),
        feeds = cfg.sites.list.iter().map(|s| s.feeds.len()).sum::<usize>(),
        sitemaps = cfg.sites.list.iter().map(|s| s.sitemaps.len()).sum::<usize>(),
        watched = cfg.watch.len(), access_logs = cfg.refback.access_logs.len(), social = %sources.join(","),
        moderation = %cfg.moderation.mode, send = cfg.send.enabled,
        notify = cfg.notify.channels(&cfg.sites).len(), queued = depth, resumed_leases = released,
        "serving"
    );
    if has(Role::Http) {
        match (&cfg.admin.password_env, cfg.admin.password().is_some()) {
            (Some(_), true) => tracing::info!(
                url = %format!("{}admin/", cfg.server.public_url),
                "the operator's page is on"
            ),
            (Some(var), false) => {
                tracing::info!("the operator's page is off: set {var} to a password to turn it on")
            }
            (None, _) => {}
        }
        if unreachable_from_outside(&cfg.server.public_url) {
            tracing::warn!(public_url = %cfg.server.public_url, "public_url is not reachable from outside: status URLs, feed links and `backfeed snippet` will point senders nowhere; set [server] public_url");
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeat(ctx.clone(), shutdown.clone()));
    if has(Role::Worker) {
        tasks.spawn(crate::pipeline::run_worker(ctx.clone(), shutdown.clone()));
        tasks.spawn(crate::notify::run(ctx.clone(), shutdown.clone()));
    }
    if has(Role::Schedule) {
        let (first, stop) = (ctx.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = crate::schedule::run_at_start(&first, crate::schedule::Job::Crawl) => {}
                _ = stop.wait() => return,
            }
            crate::schedule::run(first, crate::schedule::Job::Crawl, stop).await;
        });
        tasks.spawn(crate::schedule::run(
            ctx.clone(),
            crate::schedule::Job::Reverify,
            shutdown.clone(),
        ));
        if cfg
            .notify
            .email
            .as_ref()
            .is_some_and(|e| !e.digest.trim().is_empty())
        {
            tasks.spawn(crate::schedule::run(
                ctx.clone(),
                crate::schedule::Job::Digest,
                shutdown.clone(),
            ));
        }
    }
    if let Some(address) = ctx.cfg.server.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Failure::runtime(format!(
                "cannot listen on {address} ({e}); change [server] metrics_listen"
            ))
        })?;
        let (app, stop) = (crate::routes::metrics_router(ctx.clone()), shutdown.clone());
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, app)
                .with_graceful_shutdown(async move { stop.wait().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics listener stopped");
            }
        });
    }
    tokio::spawn(reread_sites(ctx.clone(), shutdown.clone()));
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing work in flight");
        signals.trigger();
    });
    let served = match listener {
        Some(listener) => {
            crate::server::serve(
                crate::routes::router(ctx.clone()),
                ctx.clone(),
                listener,
                shutdown.clone(),
            )
            .await
        }
        None => {
            shutdown.wait().await;
            Ok(())
        }
    };
    shutdown.trigger();
    while tasks.join_next().await.is_some() {}
    ctx.store
        .stop_instance(&instance)
        .or_log("the instance's stop not recorded");
    tracing::info!(%instance, "stopped");
    served.map_err(|e| Failure::runtime(format!("server error: {e}")))
}

/// Says every [`crate::store::HEARTBEAT_SECS`] that this process is alive, with its work so
/// far, until shutdown. A store that cannot be reached is logged and tried again next beat.
async fn heartbeat(ctx: Arc<Context>, shutdown: Shutdown) {
    let mut beat = tokio::time::interval(std::time::Duration::from_secs(
        crate::store::HEARTBEAT_SECS as u64,
    ));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = shutdown.wait() => return,
        }
        let ctx = ctx.clone();
        let beaten = tokio::task::spawn_blocking(move || {
            ctx.store
                .heartbeat(&ctx.cfg.server.instance_name, ctx.metrics.work_done())
        })
        .await;
        if let Ok(Err(e)) = beaten {
            tracing::warn!(error = %e, "heartbeat not written; trying again at the next beat");
        }
    }
}

/// Reads the configuration's sites again on SIGHUP and, with `[sites] dir`, every minute (a
/// process of a fleet that does not crawl learns a new site file too); a file that does not
/// parse is logged and changes nothing.
async fn reread_sites(ctx: Arc<Context>, shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be caught here: sites are read at start only");
        return;
    };
    let every = std::time::Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = hangup.recv() => {}
            _ = tokio::time::sleep(every), if ctx.cfg.sites_dir().is_some() => {}
            _ = shutdown.wait() => return,
        }
        let context = ctx.clone();
        let _ = tokio::task::spawn_blocking(move || context.reload_sites_logged()).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn submit(ctx: &Context, source: &str, target: &str) -> Result<(), Failure> {
    let (enqueued, post, leased) = ctx
        .submit_to_check(source, target, Kind::Webmention)
        .await
        .map_err(|r| Failure::runtime(format!("refused: {}", r.reason())))?;
    let job = match leased {
        Some(job) => job,
        None => {
            return Err(Failure::runtime(format!(
                "mention {} is being checked by a running daemon",
                enqueued.id
            )));
        }
    };
    let processed = ctx.process(&job).await;
    let status = processed
        .status
        .map(|s| s.as_str())
        .unwrap_or("pending (will retry)");
    println!("{} → {}", source, post.url);
    println!(
        "outcome: {} ({})",
        processed.outcome.word(),
        processed.outcome.reason()
    );
    println!("status:  {status}   id: {}", enqueued.id);
    // Verified, and found to be a reaction already stored through another channel: merged
    // into that mention (its reason says which), which is a success.
    let merged = matches!(processed.outcome, crate::model::Outcome::Verified(_))
        && processed.status == Some(Status::Deleted);
    if merged && let Some(reason) = ctx.store.mention(enqueued.id)?.and_then(|m| m.reason) {
        println!("merged:  {reason}");
        return Ok(());
    }
    match processed.status {
        Some(Status::Verified | Status::Held) => Ok(()),
        _ => Err(Failure {
            code: 1,
            message: format!("not verified: {}", processed.outcome.reason()),
        }),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::runtime(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `export --format jsonl`: written to a temporary file and renamed, so a backup is whole.
fn write_backup(ctx: &Context, out: &std::path::Path) -> Result<usize, Box<dyn std::error::Error>> {
    let tmp = out.with_extension("jsonl.tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let written = ctx.store.export_jsonl(&mut file)?;
    std::io::Write::flush(&mut file)?;
    drop(file);
    std::fs::rename(&tmp, out)?;
    Ok(written)
}

fn import(
    ctx: &Context,
    file: &std::path::Path,
    format: Option<&str>,
    rewrite: &[String],
    verify: bool,
    dry_run: bool,
    json: bool,
) -> Result<(), Failure> {
    use crate::import::{Format, ImportOptions, Rewrites};
    let format = match format {
        Some(f) => Format::parse(f).ok_or_else(|| {
            Failure::usage(format!("--format {f:?}: use wxr, webmention.io or jsonl"))
        })?,
        None => Format::guess(file).ok_or_else(|| {
            Failure::usage(format!(
                "cannot tell the format of {}: add --format wxr, webmention.io or jsonl",
                file.display()
            ))
        })?,
    };
    let opts = ImportOptions {
        format,
        rewrites: Rewrites::parse(rewrite).map_err(Failure::usage)?,
        verify,
        dry_run,
        collect: ctx.cfg.moderation.collect.clone(),
    };
    let counts =
        crate::import::import(&ctx.store, file, &opts, &ctx.store.site_routes()).map_err(|e| {
            Failure::runtime(format!(
                "import of {} stopped, nothing was written: {e}",
                file.display()
            ))
        })?;
    if json {
        return print_json(&counts);
    }
    let skipped: usize = counts.skipped.values().sum();
    println!(
        "{}{}: read {} · imported {} · merged {} · unchanged {} · skipped {}",
        if dry_run {
            "dry run, nothing written · "
        } else {
            ""
        },
        format.as_str(),
        counts.read,
        counts.imported,
        counts.merged,
        counts.unchanged,
        skipped
    );
    if !counts.by_status.is_empty() {
        let statuses: Vec<String> = counts
            .by_status
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        println!("  imported as: {}", statuses.join(", "));
    }
    for (reason, n) in &counts.skipped {
        println!("  skipped {n}: {reason}");
    }
    Ok(())
}

/// One line a link: status, protocol, the link, and where it went or why not.
fn print_sends(done: &[crate::store::SendRecord], dry_run: bool) {
    if done.is_empty() {
        println!(
            "{}",
            if dry_run {
                "Nothing would be sent: no post changed since its last send."
            } else {
                "Nothing sent: no post changed since its last send (use --force to send again)."
            }
        );
        return;
    }
    println!(
        "{:<12} {:<10} LINK → ENDPOINT (ANSWER)",
        "STATUS", "PROTOCOL"
    );
    for r in done {
        println!(
            "{:<12} {:<10} {} → {} ({})",
            r.status,
            r.protocol.as_deref().unwrap_or("-"),
            r.target,
            r.endpoint.as_deref().unwrap_or("-"),
            r.reason.as_deref().unwrap_or("")
        );
    }
}

/// `--site NAME` must name a configured site (`forget-site` one that is no longer).
fn check_site(command: &Command, config: &Config) -> Result<(), Failure> {
    let named = match command {
        Command::Posts { site, .. }
        | Command::Mentions { site, .. }
        | Command::Log { site, .. }
        | Command::Export { site, .. }
        | Command::Sent { site, .. } => site.as_deref(),
        Command::ForgetSite { name, .. } => {
            if config.sites.named(name).is_some() {
                return Err(Failure::usage(format!(
                    "site {name:?} is still configured: remove it from the configuration (or [sites] dir) first, then forget it"
                )));
            }
            return Ok(());
        }
        _ => None,
    };
    match named {
        Some(name) => configured_site(config, name).map(|_| ()),
        None => Ok(()),
    }
}

/// The configured site `--site NAME` names, or the usage error that lists them.
fn configured_site<'a>(
    config: &'a Config,
    name: &str,
) -> Result<&'a crate::config::SiteConfig, Failure> {
    config.sites.named(name).ok_or_else(|| {
        let names: Vec<&str> = config.sites.list.iter().map(|s| s.name.as_str()).collect();
        Failure::usage(format!(
            "--site {name:?}: no such site; configured: {}",
            names.join(", ")
        ))
    })
}

/// `backfeed forget-site NAME --yes`.
fn forget_site(ctx: &Context, name: &str, yes: bool) -> Result<(), Failure> {
    if !yes {
        return Err(Failure::usage(format!(
            "forget-site deletes every post, mention and decision of {name:?} for good: add --yes to do it"
        )));
    }
    let gone = ctx.store.forget_site(name)?;
    tracing::info!(site = %name, posts = gone.posts, mentions = gone.mentions, decisions = gone.decisions, "site forgotten");
    println!(
        "forgot site {name}: {} posts, {} mentions, {} decisions deleted",
        gone.posts, gone.mentions, gone.decisions
    );
    Ok(())
}

fn posts(ctx: &Context, json: bool, site: Option<&str>) -> Result<(), Failure> {
    let posts = ctx.store.list_posts_of(site)?;
    if json {
        return print_json(&posts);
    }
    if posts.is_empty() {
        println!("No posts known yet. Set [site] feeds or sitemaps and run `backfeed crawl`.");
    } else {
        println!(
            "{:>8}  {:<10}  {:<24} URL  TITLE",
            "MENTIONS", "PUBLISHED", "KEY"
        );
    }
    for p in posts {
        let published = p
            .published
            .as_deref()
            .and_then(|d| d.get(..10))
            .unwrap_or("-");
        println!(
            "{:>8}  {:<10}  {:<24} {}  {}",
            p.mentions,
            published,
            p.key,
            p.url,
            p.title.unwrap_or_default()
        );
    }
    Ok(())
}

fn mentions(
    ctx: &Context,
    target: Option<String>,
    status: Option<String>,
    json: bool,
    site: Option<String>,
) -> Result<(), Failure> {
    let status = match status.as_deref() {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            Failure::usage(format!(
                "--status {s:?}: use pending, verified, held, rejected or deleted"
            ))
        })?),
        None => None,
    };
    let target_keys = match target.as_deref() {
        Some(t) => vec![
            match_key(t)
                .ok_or_else(|| Failure::usage(format!("--target {t:?} is not an http(s) URL")))?,
        ],
        None => vec![],
    };
    let list = ctx.store.mentions(&MentionFilter {
        status,
        target_keys,
        site,
        ..Default::default()
    })?;
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("No mentions match.");
    } else {
        println!(
            "{:>5}  {:<8} {:<10} {:<8} SOURCE\n       → POST  REASON",
            "ID", "STATUS", "KIND", "TYPE"
        );
    }
    for m in list {
        println!(
            "{:>5}  {:<8} {:<10} {:<8} {}\n       → {}  {}",
            m.id,
            m.status.as_str(),
            m.kind.as_str(),
            m.mention_type.as_str(),
            m.source,
            m.target,
            m.reason
                .as_deref()
                .filter(|_| m.status != Status::Verified)
                .unwrap_or("")
        );
    }
    Ok(())
}

fn moderate(ctx: &Context, id: i64, approve: bool) -> Result<(), Failure> {
    let result = if approve {
        ctx.store.approve(id)?
    } else {
        ctx.store.reject(id)?
    };
    match result {
        Some(status) => {
            println!("mention {id} is now {status}");
            Ok(())
        }
        None => Err(Failure::runtime(format!(
            "no mention with id {id}; see `backfeed mentions`"
        ))),
    }
}

fn block(ctx: &Context, domain: Option<&str>, remove: bool, list: bool) -> Result<(), Failure> {
    if list {
        for d in ctx.store.blocked_domains()? {
            println!("{d}");
        }
        for d in &ctx.cfg.moderation.blocked_domains {
            println!("{d} (config)");
        }
        return Ok(());
    }
    let typed = domain.unwrap_or_default();
    let Some(domain) = crate::model::domain_name(typed) else {
        return Err(Failure::usage(format!(
            "{typed:?} is not a domain name (e.g. spam.example)"
        )));
    };
    let domain = domain.as_str();
    if remove {
        match ctx.store.unblock(domain)? {
            Some(n) => println!("unblocked {domain}; {n} mentions restored"),
            None => {
                return Err(Failure::runtime(format!(
                    "{domain} was not blocked (see `backfeed block --list`)"
                )));
            }
        }
    } else {
        let n = ctx.store.block(domain)?;
        println!(
            "blocked {domain} and its subdomains; {n} mentions hidden (undo: backfeed block --remove {domain})"
        );
    }
    Ok(())
}

/// `30s`, `15m`, `2h`, `7d`, `2w` as seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn log(ctx: &Context, since: &str, json: bool, site: Option<&str>) -> Result<(), Failure> {
    let secs = parse_duration(since)
        .ok_or_else(|| Failure::usage(format!("--since {since:?}: use e.g. 30m, 2h, 7d")))?;
    let from = crate::model::secs_ago_rfc3339(secs);
    let decisions = ctx.store.decisions_since(&from, site)?;
    if decisions.is_empty() && !json {
        println!("No decisions since {from} (try --since 7d).");
    }
    for d in decisions {
        if json {
            println!(
                "{}",
                serde_json::to_string(&d).map_err(|e| Failure::runtime(e.to_string()))?
            );
        } else {
            println!(
                "{}  {:<10} {:<9} {} → {}\n      {}",
                d.at, d.kind, d.outcome, d.source, d.target, d.reason
            );
        }
    }
    Ok(())
}

fn status(ctx: &Context, json: bool) -> Result<(), Failure> {
    let report = crate::status::StatusReport::gather(ctx)?;
    let counts = &report.counts;
    if json {
        return print_json(&serde_json::json!({
            "posts": counts.posts,
            "mentions": counts.by_status.iter().map(|(s, n)| (s.clone(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
            "queue_depth": counts.queue_depth, "queue_due": counts.queue_due, "decisions": counts.decisions,
            "schedules": report.schedules, "failing": report.failing, "notifications": report.notifications,
            "warnings": report.warnings, "instances": report.instances,
        }));
    }
    println!("store:     {}", ctx.cfg.store.describe());
    if report.instances.is_empty() {
        println!("serving:   no live `serve` process");
    }
    for i in &report.instances {
        println!(
            "INSTANCE   {} on {} · roles {} · started {} · heartbeat {} · checked {} · requests {}",
            i.name, i.host, i.roles, i.started_at, i.heartbeat_at, i.checked, i.requests
        );
    }
    println!("posts:     {}", counts.posts);
    let by_status: Vec<String> = counts
        .by_status
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "mentions:  {}",
        if by_status.is_empty() {
            "none".into()
        } else {
            by_status.join(", ")
        }
    );
    println!(
        "queue:     {} waiting, {} due now",
        counts.queue_depth, counts.queue_due
    );
    for s in &report.schedules {
        println!(
            "{:<9}  last {} · next {} ({})",
            s.name,
            s.last_end.as_deref().unwrap_or("never"),
            s.next.as_deref().unwrap_or("-"),
            s.cron
        );
        if let Some(summary) = &s.last_summary {
            println!("           {summary}");
        }
    }
    for p in &report.source_problems {
        println!("SOURCE     {}: {}", p.name, p.error);
    }
    for w in &report.warnings {
        println!("WARNING    {w}");
    }
    for d in &report.notifications {
        println!(
            "NOTIFY     {}: {} pending{}",
            d.channel,
            d.pending,
            d.last_error
                .as_deref()
                .map(|e| format!(" · last error: {e}"))
                .unwrap_or_default()
        );
    }
    for f in &report.failing {
        println!(
            "FAILING    {} — {} errors in a row, last: {} (last ok: {}; next try: {})",
            f.url,
            f.errors,
            f.last_error.as_deref().unwrap_or("?"),
            f.last_ok.as_deref().unwrap_or("never"),
            f.next_try.as_deref().unwrap_or("next crawl")
        );
    }
    Ok(())
}

/// Whether others cannot reach `url`: a loopback or private address, or `localhost`.
fn unreachable_from_outside(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !crate::fetch::is_public(ip.into()),
        Some(url::Host::Ipv6(ip)) => !crate::fetch::is_public(ip.into()),
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        None => true,
    }
}

fn snippet(config: &Config, post_url: Option<&str>, site: Option<&str>) -> Result<(), Failure> {
    let public = &config.server.public_url;
    let site = match site {
        None => None,
        Some(name) => Some(configured_site(config, name)?),
    };
    if let (Some(site), Some(url)) = (site, post_url)
        && !url::Url::parse(url).is_ok_and(|u| crate::sites::is_under(&u, &site.base_url))
    {
        return Err(Failure::usage(format!(
            "{url} is not under site {} ({})",
            site.name, site.base_url
        )));
    }
    if unreachable_from_outside(public) {
        eprintln!(
            "backfeed: warning: [server] public_url is {public}, which no one else can reach; \
             set it to the address others use (behind HTTPS) before pasting these tags"
        );
    }
    let esc = crate::text::html_escape;
    println!("<!-- In the <head> of every post: -->");
    println!(
        "<link rel=\"pingback\" href=\"{}\">",
        esc(&format!("{public}xmlrpc"))
    );
    println!(
        "<link rel=\"webmention\" href=\"{}\">",
        esc(&format!("{public}webmention"))
    );
    println!();
    println!("# Or as HTTP headers:");
    println!("X-Pingback: {public}xmlrpc");
    println!("Link: <{public}webmention>; rel=\"webmention\"");
    if let Some(url) = post_url {
        let ping = format!(
            "{public}trackback?target={}",
            percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC)
        );
        println!();
        println!("<!-- Trackback discovery for this post: -->");
        println!("<!--\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"");
        println!("         xmlns:dc=\"http://purl.org/dc/elements/1.1/\"");
        println!(
            "         xmlns:trackback=\"http://madskills.com/public/xml/rss/module/trackback/\">"
        );
        println!(
            "  <rdf:Description rdf:about=\"{0}\"\n      dc:identifier=\"{0}\"",
            esc(url)
        );
        println!(
            "      trackback:ping=\"{}\" />\n</rdf:RDF>\n-->",
            esc(&ping)
        );
        println!("<link rel=\"trackback\" href=\"{}\">", esc(&ping));
    }
    if let Some(site) = site {
        println!();
        println!("# {}'s mentions, for its site build:", site.title);
        println!("{public}mentions.atom?site={}", site.name);
        println!("{public}api/mentions.jf2?site={}", site.name);
    }
    Ok(())
}
