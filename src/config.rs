//! TOML → a validated [`Config`], in one place.
//!
//! Every later layer trusts what it gets from here: URLs are parsed, cron expressions compile,
//! the listen address is an address. A problem becomes a [`ConfigError`] that names the key, so
//! `main` can print one line and exit 2. Secrets are never in the file: only the names of the
//! environment variables that hold them.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use url::Url;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {key}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// `[site]` (one site) or `[[site]]` (many): read as a value, then as one or a list.
    site: Option<toml::Value>,
    #[serde(default)]
    sites: RawSites,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    schedule: ScheduleConfig,
    #[serde(default)]
    fetch: FetchConfig,
    #[serde(default)]
    watch: Vec<WatchConfig>,
    #[serde(default)]
    sources: SourcesConfig,
    #[serde(default)]
    refback: RefbackConfig,
    #[serde(default)]
    moderation: ModerationConfig,
    #[serde(default)]
    send: SendConfig,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    admin: AdminConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Option<String>,
    base_url: Option<String>,
    #[serde(default)]
    feeds: Vec<String>,
    #[serde(default)]
    sitemaps: Vec<String>,
    title: Option<String>,
    #[serde(default)]
    own_profiles: Vec<String>,
    moderation: Option<String>,
    admin_password_env: Option<String>,
    #[serde(default)]
    webhook: Vec<WebhookConfig>,
    email: Option<SiteEmail>,
}

/// `[sites]`: where more sites are kept, one file each.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSites {
    dir: Option<PathBuf>,
}

/// `[site.email]`: this site's mail recipients (sent through `[notify.email]`'s server and
/// sender, or this table's own).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteEmail {
    pub to: Vec<String>,
    pub from: Option<String>,
    pub smtp_url_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    rate_limit_per_client: Option<u32>,
    rate_limit_per_source_host: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    metrics_listen: Option<String>,
    instance_name: Option<String>,
}

/// One site (`[site]`, a `[[site]]`, or a file of `[sites] dir`): whose posts we collect
/// mentions for.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// `[a-z0-9.-]`; by default the `base_url`'s host.
    pub name: String,
    pub base_url: Url,
    pub feeds: Vec<Url>,
    pub sitemaps: Vec<Url>,
    pub title: String,
    /// The blogger's own accounts elsewhere (POSSE): their copies of a post are not mentions.
    pub own_profiles: Vec<Url>,
    /// Whether this site's verified mentions wait for approval (`moderation = "queue"`), else
    /// `[moderation] mode`.
    pub holds: bool,
    /// The variable holding this site's owner's password for `/admin/`.
    pub admin_password_env: Option<String>,
    /// `[[site.webhook]]`: told of this site's mentions only.
    pub webhook: Vec<WebhookConfig>,
    /// `[site.email]`: told of this site's mentions only.
    pub email: Option<SiteEmail>,
}

impl SiteConfig {
    /// The site owner's password, when one is set (and not empty).
    pub fn admin_password(&self) -> Option<String> {
        let name = self.admin_password_env.as_deref()?;
        std::env::var(name).ok().filter(|p| !p.is_empty())
    }

    /// What routing needs of this site: its name and prefix.
    pub fn route(&self) -> crate::sites::SiteRoute {
        crate::sites::SiteRoute {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
        }
    }
}

/// Every site of a configuration, in the order written (`[site]`/`[[site]]`, then `[sites]
/// dir`'s files by name), and their routes.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    pub list: Vec<SiteConfig>,
    pub routes: crate::sites::Routes,
    /// A digest of every site's name, title and `base_url`: what published ETags carry, so a
    /// renamed or retitled site gets new ones.
    pub fingerprint: String,
}

impl Sites {
    fn new(list: Vec<SiteConfig>) -> Sites {
        use sha2::Digest;
        let routes = crate::sites::Routes::new(list.iter().map(SiteConfig::route).collect());
        let mut digest = sha2::Sha256::new();
        for site in &list {
            digest.update(format!(
                "{}\n{}\n{}\n",
                site.name, site.title, site.base_url
            ));
        }
        let fingerprint = hex::encode(digest.finalize())[..16].to_string();
        Sites {
            list,
            routes,
            fingerprint,
        }
    }

    /// The site `url` lives under (the longest `base_url` prefix).
    pub fn for_url(&self, url: &Url) -> Option<&SiteConfig> {
        let name = &self.routes.route(url)?.name;
        self.named(name)
    }

    /// [`Sites::for_url`] of a URL as text (a mention's target, a post's URL).
    pub fn for_target(&self, target: &str) -> Option<&SiteConfig> {
        self.for_url(&Url::parse(target.trim()).ok()?)
    }

    pub fn named(&self, name: &str) -> Option<&SiteConfig> {
        self.list.iter().find(|s| s.name == name)
    }

    /// The site whose `base_url`'s host is `domain` (webmention.io's `domain` parameter).
    pub fn for_domain(&self, domain: &str) -> Option<&SiteConfig> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        self.list.iter().find(|s| {
            s.base_url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&domain))
        })
    }

    /// The one site, when there is exactly one.
    pub fn only(&self) -> Option<&SiteConfig> {
        match self.list.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The first site configured: whose names a page about no site in particular carries.
    pub fn first(&self) -> Option<&SiteConfig> {
        self.list.first()
    }
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The SQLite file (empty on PostgreSQL).
    pub path: PathBuf,
    /// Where the store lives: the SQLite file, or the PostgreSQL database `url_env` names.
    pub location: crate::store::Location,
    /// The environment variable holding PostgreSQL's URL (named in messages; the URL never is).
    pub url_env: Option<String>,
    /// How long a lease on a job lasts without renewal: the holder renews it every third of
    /// this while it works, and a job whose holder stopped renewing is taken over after it.
    pub lease_secs: i64,
}

/// `[store]` as written: `path` (SQLite) or `url_env` (PostgreSQL), not both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    path: Option<PathBuf>,
    url_env: Option<String>,
    pool_size: usize,
    lease_secs: i64,
}

impl StoreConfig {
    /// The store as messages name it: its file, or the variable naming PostgreSQL's URL.
    pub fn describe(&self) -> String {
        match &self.location {
            crate::store::Location::Sqlite(path) => path.display().to_string(),
            crate::store::Location::Postgres { .. } => {
                format!("PostgreSQL (${})", self.url_env.as_deref().unwrap_or("?"))
            }
        }
    }
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: None,
            url_env: None,
            pool_size: 16,
            lease_secs: 60,
        }
    }
}

/// Where `/metrics` is served when `[server] metrics_listen` is not set.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// Receiver requests per minute from one client address (0: no limit).
    pub rate_limit_per_client: u32,
    /// Pings per minute naming sources on one host (0: no limit).
    pub rate_limit_per_source_host: u32,
    /// Open connections at most; more are closed as they arrive.
    pub max_connections: usize,
    /// Open connections from one client address at most (0: no limit besides the total).
    pub max_connections_per_client: usize,
    /// A request's headers must arrive within this; an idle keep-alive connection is closed
    /// after it too.
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this.
    pub body_timeout_secs: u64,
    /// Where `/metrics` is served instead of on `listen` (for a scraper on a private address).
    pub metrics_listen: Option<SocketAddr>,
    /// This process's name in logs, `status` and `/metrics` (default `hostname:pid`).
    pub instance_name: String,
}

/// `[schedule]`: cron expressions with seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub crawl: String,
    pub reverify: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            crawl: "0 */30 * * * *".into(),
            reverify: "0 0 4 * * *".into(),
        }
    }
}

/// `[fetch]`: limits on every outbound request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    pub user_agent: String,
    pub timeout_secs: u64,
    pub max_bytes: usize,
    pub max_redirects: usize,
    pub concurrency: usize,
    pub per_host: usize,
    /// Fetches of URLs from outside per minute to one host (0: no budget), counted on the host
    /// actually fetched after every redirect, so no one can aim backfeed at a third party.
    pub per_host_per_minute: u32,
    pub allow_private_addresses: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: "backfeed/VERSION (+public_url)".into(),
            timeout_secs: 10,
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 5,
            concurrency: 32,
            per_host: 2,
            per_host_per_minute: 60,
            allow_private_addresses: false,
        }
    }
}

/// One `[[watch]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    pub url: String,
    pub kind: Option<String>,
}

/// `[sources.*]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub hackernews: SocialSource,
    pub reddit: SocialSource,
    pub bluesky: SocialSource,
    pub mastodon: SocialSource,
}

/// One social source; the union of the keys each source takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocialSource {
    pub enabled: bool,
    pub api_base: Option<String>,
    pub identifier: Option<String>,
    pub password_env: Option<String>,
    pub account: Option<String>,
    pub search: bool,
    pub token_env: Option<String>,
    /// Reddit app-only OAuth (backfeed extension): names of the variables holding the client
    /// id and secret, and the OAuth API host.
    pub client_id_env: Option<String>,
    pub client_secret_env: Option<String>,
    pub oauth_api_base: Option<String>,
}

/// `[refback]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefbackConfig {
    pub access_logs: Vec<PathBuf>,
}

/// `[notify]`: who hears of a mention published or deleted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `[[notify.webhook]]`, each POSTed on every published or deleted mention.
    pub webhook: Vec<WebhookConfig>,
    /// `[notify.email]`: mail like WordPress sent.
    pub email: Option<EmailConfig>,
}

/// The channel name of mail deliveries.
pub const MAIL: &str = "mail";

impl NotifyConfig {
    /// Whether anyone is to be told, globally or by one of `sites`.
    pub fn any(&self, sites: &Sites) -> bool {
        !self.webhook.is_empty()
            || self.email.is_some()
            || sites
                .list
                .iter()
                .any(|s| !s.webhook.is_empty() || s.email.is_some())
    }

    /// The channels this configuration names, each with the site it is for (`""`: every
    /// site): every global webhook by its URL and `mail`; each site's webhooks as
    /// `site:NAME:URL`, its mail as `mail:NAME`.
    pub fn channels(&self, sites: &Sites) -> Vec<(String, String)> {
        let global = self
            .webhook
            .iter()
            .map(|w| (w.url.to_string(), String::new()))
            .chain(
                self.email
                    .as_ref()
                    .map(|_| (MAIL.to_string(), String::new())),
            );
        let per_site = sites.list.iter().flat_map(|site| {
            site.webhook
                .iter()
                .map(|w| (format!("site:{}:{}", site.name, w.url), site.name.clone()))
                .chain(
                    site.email
                        .as_ref()
                        .map(|_| (format!("{MAIL}:{}", site.name), site.name.clone())),
                )
        });
        global.chain(per_site).collect()
    }

    /// Where a channel delivers, as configured now (`None`: no longer configured).
    pub fn resolve<'a>(&'a self, channel: &str, sites: &'a Sites) -> Option<Channel<'a>> {
        let mail = |to: &[String], site: Option<&SiteEmail>| -> Option<Channel<'a>> {
            let global = self.email.as_ref();
            Some(Channel::Mail(MailTo {
                to: to.to_vec(),
                from: site
                    .and_then(|s| s.from.clone())
                    .or_else(|| global.map(|g| g.from.clone()))?,
                smtp_url_env: site
                    .and_then(|s| s.smtp_url_env.clone())
                    .or_else(|| global.map(|g| g.smtp_url_env.clone()))
                    .unwrap_or_else(default_smtp_url_env),
            }))
        };
        if channel == MAIL {
            return mail(&self.email.as_ref()?.to, None);
        }
        if let Some(name) = channel.strip_prefix("mail:") {
            let email = sites.named(name)?.email.as_ref()?;
            return mail(&email.to, Some(email));
        }
        if let Some(rest) = channel.strip_prefix("site:") {
            let (name, url) = rest.split_once(':')?;
            let hook = sites
                .named(name)?
                .webhook
                .iter()
                .find(|w| w.url.as_str() == url)?;
            return Some(Channel::Webhook(hook));
        }
        self.webhook
            .iter()
            .find(|w| w.url.as_str() == channel)
            .map(Channel::Webhook)
    }

    /// How a channel is shown wherever a person or a program reads it (logs, the decision log,
    /// `status`, the operator's page, `/metrics`): `mail`, or a webhook's `name`, by default its
    /// host (a site's with the site's name before it). A build hook's URL is its secret
    /// (Netlify's and others' carry the token in the path), so its path and query are shown
    /// nowhere.
    pub fn channel_label(&self, channel: &str, sites: &Sites) -> String {
        if channel == MAIL || channel.starts_with("mail:") {
            return channel.into();
        }
        let site = channel
            .strip_prefix("site:")
            .and_then(|rest| rest.split_once(':'))
            .map(|(name, _)| format!("{name}: "))
            .unwrap_or_default();
        let url = channel
            .strip_prefix("site:")
            .and_then(|rest| rest.split_once(':'))
            .map_or(channel, |(_, url)| url);
        let name = match self.resolve(channel, sites) {
            Some(Channel::Webhook(hook)) => hook.name.clone(),
            _ => None,
        };
        name.or_else(|| crate::model::host_of(url)).map_or_else(
            || format!("{site}webhook"),
            |host| format!("{site}webhook {host}"),
        )
    }
}

/// Where a delivery goes.
pub enum Channel<'a> {
    Webhook(&'a WebhookConfig),
    Mail(MailTo),
}

/// One mail channel: the global `[notify.email]`, or a site's recipients through it.
pub struct MailTo {
    pub to: Vec<String>,
    pub from: String,
    pub smtp_url_env: String,
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: Url,
    /// How the hook is shown in logs, `status` and `/metrics` (default: its host). Its URL is
    /// often its secret (a build hook's token is in the path), so it is never shown.
    pub name: Option<String>,
    /// `webmention.io` (its webhook body) or `jf2` (the entry alone).
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// The variable holding the shared secret (sent in the body, and signing it).
    pub secret_env: Option<String>,
}

fn default_webhook_format() -> String {
    "webmention.io".into()
}

/// `[notify.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The variable holding lettre's SMTP URL (credentials included).
    #[serde(default = "default_smtp_url_env")]
    pub smtp_url_env: String,
    pub from: String,
    pub to: Vec<String>,
    /// Empty: one mail per published mention; else a cron expression for one digest a run.
    #[serde(default)]
    pub digest: String,
}

fn default_smtp_url_env() -> String {
    "BACKFEED_SMTP_URL".into()
}

/// `[send]`: pings for the links in the blogger's own posts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// Every crawl (and the schedule in `serve`) ends with a send for the posts that changed.
    pub enabled: bool,
    /// Also ping the site's own posts (WordPress does; most people turn it off).
    pub self_pings: bool,
    /// Never ping these domains (and their subdomains).
    pub exclude_domains: Vec<String>,
}

/// `[admin]`: the operator's page at `/admin/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The environment variable holding the sign-in password; the page is on when it is set
    /// (and not empty).
    pub password_env: Option<String>,
}

impl AdminConfig {
    /// The password, when the page is on.
    pub fn password(&self) -> Option<String> {
        let name = self.password_env.as_deref()?;
        std::env::var(name).ok().filter(|p| !p.is_empty())
    }
}

/// `[moderation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModerationConfig {
    pub mode: String,
    pub blocked_domains: Vec<String>,
    /// The types of mention kept (`reply`, `mention`, `repost`, `like`, `bookmark`, `rsvp`);
    /// others are refused once verified, with the reason "type not collected".
    pub collect: Vec<String>,
}

/// Every type `[moderation] collect` may name.
pub const COLLECTABLE: [&str; 6] = ["reply", "mention", "repost", "like", "bookmark", "rsvp"];

impl Default for ModerationConfig {
    fn default() -> Self {
        ModerationConfig {
            mode: "auto".into(),
            blocked_domains: Vec::new(),
            collect: COLLECTABLE.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl ModerationConfig {
    /// Whether verified mentions wait for approval.
    pub fn holds(&self) -> bool {
        self.mode == "queue"
    }

    /// Whether mentions of this type are kept.
    pub fn collects(&self, mention_type: crate::model::MentionType) -> bool {
        self.collect.iter().any(|t| t == mention_type.as_str())
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub sites: Sites,
    sites_dir: Option<PathBuf>,
    pub store: StoreConfig,
    pub server: ServerConfig,
    pub schedule: ScheduleConfig,
    pub fetch: FetchConfig,
    pub watch: Vec<WatchConfig>,
    pub sources: SourcesConfig,
    pub refback: RefbackConfig,
    pub moderation: ModerationConfig,
    pub send: SendConfig,
    pub notify: NotifyConfig,
    pub admin: AdminConfig,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            path: path.display().to_string(),
            key: key.to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                "(file)",
                format!("cannot read: {e}; pass --config PATH or set BACKFEED_CONFIG"),
            )
        })?;
        Self::parse(&text, path)
    }

    /// Validates TOML text; `path` only names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            path: path.display().to_string(),
            key: key.to_string(),
            message,
        };
        let line_of = |e: &toml::de::Error| {
            e.span()
                .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1))
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default()
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            err(
                "(syntax)",
                format!("{}{}", e.message().replace('\n', " "), line_of(&e)),
            )
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            err(
                &key,
                format!("{}{}", inner.message().replace('\n', " "), line_of(&inner)),
            )
        })?;

        let sites = parse_sites(&raw, path)?;
        if raw.notify.email.is_none()
            && let Some(site) = sites
                .list
                .iter()
                .find(|s| s.email.as_ref().is_some_and(|e| e.from.is_none()))
        {
            return Err(err(
                "site.email.from",
                format!(
                    "site {:?} has mail recipients but no sender: set its email.from, or [notify.email]",
                    site.name
                ),
            ));
        }
        let listen_text = raw.server.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = SocketAddr::from_str(&listen_text).map_err(|e| {
            err(
                "server.listen",
                format!("{listen_text:?} is not HOST:PORT ({e})"),
            )
        })?;
        let public_url = match raw.server.public_url {
            Some(u) => parse_http_url(&u).map_err(|m| err("server.public_url", m))?,
            None => Url::parse(&format!("http://{listen}/")).expect("socket address forms a URL"),
        };

        let digest = raw
            .notify
            .email
            .as_ref()
            .map(|e| e.digest.clone())
            .filter(|d| !d.trim().is_empty());
        for (key, expr) in [
            ("schedule.crawl", &raw.schedule.crawl),
            ("schedule.reverify", &raw.schedule.reverify),
        ]
        .into_iter()
        .chain(digest.as_ref().map(|d| ("notify.email.digest", d)))
        {
            cron::Schedule::from_str(expr).map_err(|e| {
                err(
                    key,
                    format!("{expr:?} is not a cron expression with seconds ({e})"),
                )
            })?;
        }

        if raw.store.url_env.is_some() && raw.store.path.is_some() {
            return Err(err(
                "store.path",
                "and store.url_env are both set: keep one (path for SQLite, url_env for PostgreSQL)"
                    .into(),
            ));
        }
        let postgres_url = match &raw.store.url_env {
            None => None,
            Some(variable) => match std::env::var(variable) {
                Ok(url)
                    if url.trim().starts_with("postgres://")
                        || url.trim().starts_with("postgresql://") =>
                {
                    Some(url.trim().to_string())
                }
                Ok(url) if !url.trim().is_empty() => {
                    return Err(err(
                        "store.url_env",
                        format!(
                            "names ${variable}, which does not hold a postgres:// URL: set it to postgres://user:pass@host:5432/db"
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        "store.url_env",
                        format!(
                            "names ${variable}, which is unset or empty: set it to postgres://user:pass@host:5432/db"
                        ),
                    ));
                }
            },
        };
        if raw.store.pool_size == 0 {
            return Err(err("store.pool_size", "must be at least 1".into()));
        }
        if !(3..=86_400).contains(&raw.store.lease_secs) {
            return Err(err(
                "store.lease_secs",
                "must be between 3 and 86400 seconds".into(),
            ));
        }
        let mut fetch = raw.fetch;
        if fetch.timeout_secs == 0 {
            return Err(err("fetch.timeout_secs", "must be at least 1".into()));
        }
        if fetch.max_bytes < 1024 {
            return Err(err("fetch.max_bytes", "must be at least 1024".into()));
        }
        if fetch.concurrency == 0 {
            return Err(err("fetch.concurrency", "must be at least 1".into()));
        }
        if fetch.per_host == 0 {
            return Err(err("fetch.per_host", "must be at least 1".into()));
        }
        fetch.user_agent = fetch
            .user_agent
            .replace("VERSION", env!("CARGO_PKG_VERSION"))
            .replace("public_url", public_url.as_str());

        check_webhooks(&raw.notify.webhook, "notify.webhook").map_err(|(k, m)| err(&k, m))?;
        if let Some(email) = &raw.notify.email {
            check_addresses(
                std::iter::once(("notify.email.from", &email.from))
                    .chain(email.to.iter().map(|t| ("notify.email.to", t))),
            )
            .map_err(|(k, m)| err(&k, m))?;
        }

        for (i, w) in raw.watch.iter().enumerate() {
            parse_http_url(&w.url).map_err(|m| err(&format!("watch[{i}].url"), m))?;
            if let Some(kind) = &w.kind
                && kind != "feed"
                && kind != "page"
            {
                return Err(err(
                    &format!("watch[{i}].kind"),
                    format!("{kind:?} is not \"feed\" or \"page\""),
                ));
            }
        }
        for (name, s) in [
            ("hackernews", &raw.sources.hackernews),
            ("reddit", &raw.sources.reddit),
            ("bluesky", &raw.sources.bluesky),
            ("mastodon", &raw.sources.mastodon),
        ] {
            for (key, value) in [
                ("api_base", &s.api_base),
                ("oauth_api_base", &s.oauth_api_base),
            ] {
                if let Some(api) = value {
                    parse_http_url(api).map_err(|m| err(&format!("sources.{name}.{key}"), m))?;
                }
            }
        }
        if let Some(unknown) = raw
            .moderation
            .collect
            .iter()
            .find(|t| !COLLECTABLE.contains(&t.as_str()))
        {
            return Err(err(
                "moderation.collect",
                format!("{unknown:?} is not a type: use {}", COLLECTABLE.join(", ")),
            ));
        }
        if raw.moderation.mode != "auto" && raw.moderation.mode != "queue" {
            return Err(err(
                "moderation.mode",
                format!("{:?} is not \"auto\" or \"queue\"", raw.moderation.mode),
            ));
        }

        // A relative store path is relative to the config file, wherever backfeed is started
        // from: `--config ../cfg/backfeed.toml` keeps the store beside it.
        let store_path = match (&raw.store.path, &raw.store.url_env) {
            (None, Some(_)) => PathBuf::new(),
            (store, _) => {
                let store = store
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("data/backfeed.db"));
                if store.is_relative() {
                    path.parent().unwrap_or(Path::new("")).join(store)
                } else {
                    store
                }
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            sites,
            sites_dir: raw.sites.dir.clone(),
            store: StoreConfig {
                location: match postgres_url {
                    Some(url) => crate::store::Location::Postgres {
                        url,
                        pool_size: raw.store.pool_size,
                    },
                    None => crate::store::Location::Sqlite(store_path.clone()),
                },
                path: store_path,
                url_env: raw.store.url_env.clone(),
                lease_secs: raw.store.lease_secs,
            },
            server: ServerConfig {
                listen,
                public_url,
                rate_limit_per_client: raw.server.rate_limit_per_client.unwrap_or(120),
                rate_limit_per_source_host: raw.server.rate_limit_per_source_host.unwrap_or(60),
                max_connections: raw.server.max_connections.unwrap_or(1_000).max(1),
                max_connections_per_client: raw.server.max_connections_per_client.unwrap_or(100),
                header_timeout_secs: raw.server.header_timeout_secs.unwrap_or(10).max(1),
                body_timeout_secs: raw.server.body_timeout_secs.unwrap_or(10).max(1),
                instance_name: match raw.server.instance_name.as_deref().map(str::trim) {
                    None | Some("") => format!("{}:{}", crate::store::hostname(), std::process::id()),
                    Some(name) if name.len() <= 100 && !name.chars().any(char::is_control) => name.to_string(),
                    Some(_) => {
                        return Err(err(
                            "server.instance_name",
                            "must be at most 100 characters, without control characters".into(),
                        ));
                    }
                },
                // `/metrics` has a loopback listener of its own unless told otherwise: the
                // main listener is the one put behind a public proxy. `""` serves it there.
                metrics_listen: match raw
                    .server
                    .metrics_listen
                    .as_deref()
                    .unwrap_or(DEFAULT_METRICS_LISTEN)
                    .trim()
                {
                    "" => None,
                    a => Some(a.parse().map_err(|e| {
                        err(
                            "server.metrics_listen",
                            format!(
                                "{a:?} is not an address:port ({e}); \"\" serves /metrics on the main listener"
                            ),
                        )
                    })?),
                },
            },
            schedule: raw.schedule,
            fetch,
            watch: raw.watch,
            sources: raw.sources,
            refback: raw.refback,
            moderation: raw.moderation,
            send: raw.send,
            notify: raw.notify,
            admin: raw.admin,
        })
    }

    /// `[sites] dir`, when sites are kept in files there.
    pub fn sites_dir(&self) -> Option<&Path> {
        self.sites_dir.as_deref()
    }

    /// Re-reads this configuration's file (and `[sites] dir`) for its sites alone: what
    /// SIGHUP and each crawl pick up without a restart.
    pub fn reread_sites(&self) -> Result<Sites, ConfigError> {
        Ok(Config::load(&self.path)?.sites)
    }
}

/// A configuration key and what is wrong with it.
type KeyError = (String, String);

fn check_webhooks(hooks: &[WebhookConfig], key: &str) -> Result<(), KeyError> {
    match hooks
        .iter()
        .position(|h| h.format != "webmention.io" && h.format != "jf2")
    {
        Some(i) => Err((
            format!("{key}[{i}].format"),
            format!("{:?} is not \"webmention.io\" or \"jf2\"", hooks[i].format),
        )),
        None => Ok(()),
    }
}

fn check_addresses<'a>(
    mut addresses: impl Iterator<Item = (&'a str, &'a String)>,
) -> Result<(), KeyError> {
    match addresses.find(|(_, addr)| addr.parse::<lettre::Address>().is_err()) {
        Some((key, addr)) => Err((key.to_string(), format!("{addr:?} is not a mail address"))),
        None => Ok(()),
    }
}

/// Every site: `[site]` or `[[site]]`, then each `*.toml` of `[sites] dir` by file name (a
/// file holds one site's keys, at the top or under `[site]`). Names and `base_url`s are unique.
fn parse_sites(raw: &RawConfig, path: &Path) -> Result<Sites, ConfigError> {
    let err = |path: &Path, key: &str, message: String| ConfigError {
        path: path.display().to_string(),
        key: key.to_string(),
        message,
    };
    let default_holds = raw.moderation.mode == "queue";
    let mut list: Vec<(PathBuf, String, SiteConfig)> = Vec::new();
    match &raw.site {
        None => {}
        Some(toml::Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let key = format!("site[{i}]");
                let site = site_from_value(item, &key, default_holds)
                    .map_err(|(k, m)| err(path, &k, m))?;
                list.push((path.to_path_buf(), key, site));
            }
        }
        Some(table @ toml::Value::Table(_)) => {
            let site =
                site_from_value(table, "site", default_holds).map_err(|(k, m)| err(path, &k, m))?;
            list.push((path.to_path_buf(), "site".into(), site));
        }
        Some(_) => {
            return Err(err(
                path,
                "site",
                "must be a table ([site]) or a list of them ([[site]])".into(),
            ));
        }
    }
    if let Some(dir) = &raw.sites.dir {
        let dir = if dir.is_relative() {
            path.parent().unwrap_or(Path::new("")).join(dir)
        } else {
            dir.clone()
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| {
                err(
                    path,
                    "sites.dir",
                    format!("cannot read {}: {e}", dir.display()),
                )
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| err(&file, "(file)", format!("cannot read: {e}")))?;
            let value: toml::Table = toml::from_str(&text)
                .map_err(|e| err(&file, "(syntax)", e.message().replace('\n', " ")))?;
            let value = match value.get("site") {
                Some(site @ toml::Value::Table(_)) => site.clone(),
                _ => toml::Value::Table(value),
            };
            let site = site_from_value(&value, "site", default_holds)
                .map_err(|(k, m)| err(&file, &k, m))?;
            list.push((file, "site".into(), site));
        }
    }
    if list.is_empty() && raw.sites.dir.is_none() {
        return Err(err(
            path,
            "site.base_url",
            "is required (your blog's URL)".into(),
        ));
    }
    for (i, (file, key, site)) in list.iter().enumerate() {
        let earlier = &list[..i];
        if let Some((other, ..)) = earlier.iter().find(|(_, _, s)| s.name == site.name) {
            return Err(err(
                file,
                &format!("{key}.name"),
                format!(
                    "{:?} names another site too (in {}): give each site its own name",
                    site.name,
                    other.display()
                ),
            ));
        }
        if let Some((_, _, s)) = earlier.iter().find(|(_, _, s)| s.base_url == site.base_url) {
            return Err(err(
                file,
                &format!("{key}.base_url"),
                format!("{} is site {:?}'s base_url too", site.base_url, s.name),
            ));
        }
    }
    Ok(Sites::new(list.into_iter().map(|(_, _, s)| s).collect()))
}

/// One site's table, checked; errors name the key under `key` (`site`, `site[2]`).
fn site_from_value(
    value: &toml::Value,
    key: &str,
    default_holds: bool,
) -> Result<SiteConfig, KeyError> {
    let raw: RawSite = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let at = if at == "." || at.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{at}")
        };
        (at, inner.message().replace('\n', " "))
    })?;
    let k = |name: &str| format!("{key}.{name}");
    let base = raw
        .base_url
        .ok_or_else(|| (k("base_url"), "is required (your blog's URL)".to_string()))?;
    let base_url = parse_http_url(&base).map_err(|m| (k("base_url"), m))?;
    let parse_list = |name: &str, list: &[String]| -> Result<Vec<Url>, KeyError> {
        list.iter()
            .map(|u| parse_http_url(u).map_err(|m| (k(name), format!("{u:?}: {m}"))))
            .collect()
    };
    let host = base_url.host_str().unwrap_or("").to_ascii_lowercase();
    let name = raw.name.unwrap_or_else(|| host.clone());
    if !crate::sites::valid_name(&name) {
        return Err((
            k("name"),
            format!("{name:?} may hold only a-z, 0-9, '-' and '.' (at most 100)"),
        ));
    }
    let holds = match raw.moderation.as_deref() {
        None => default_holds,
        Some("auto") => false,
        Some("queue") => true,
        Some(other) => {
            return Err((
                k("moderation"),
                format!("{other:?} is not \"auto\" or \"queue\""),
            ));
        }
    };
    check_webhooks(&raw.webhook, &k("webhook"))?;
    if let Some(email) = &raw.email {
        let (to, from) = (k("email.to"), k("email.from"));
        check_addresses(
            email
                .to
                .iter()
                .map(|t| (to.as_str(), t))
                .chain(email.from.iter().map(|f| (from.as_str(), f))),
        )?;
    }
    Ok(SiteConfig {
        feeds: parse_list("feeds", &raw.feeds)?,
        sitemaps: parse_list("sitemaps", &raw.sitemaps)?,
        own_profiles: parse_list("own_profiles", &raw.own_profiles)?,
        title: raw.title.unwrap_or(host),
        name,
        base_url,
        holds,
        admin_password_env: raw.admin_password_env,
        webhook: raw.webhook,
        email: raw.email,
    })
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[site]\nbase_url = \"https://blog.example/\"\n").unwrap();
        assert_eq!(c.fetch.max_bytes, 2_097_152);
        assert_eq!(c.server.listen.port(), 8080);
        assert!(c.fetch.user_agent.starts_with("backfeed/"));
        assert!(c.fetch.user_agent.contains("http://127.0.0.1:8080/"));
        assert_eq!(
            c.server.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap()),
            "/metrics on a loopback listener of its own"
        );
        assert_eq!(c.store.lease_secs, 60);
        let on_main = parse(
            "[site]\nbase_url = \"https://blog.example/\"\n[server]\nmetrics_listen = \"\"\n",
        )
        .unwrap();
        assert_eq!(on_main.server.metrics_listen, None);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(parse("").unwrap_err().key, "site.base_url");
        assert_eq!(
            parse("[site]\nbase_url = \"ftp://x\"").unwrap_err().key,
            "site.base_url"
        );
        let e =
            parse("[site]\nbase_url = \"https://b.example/\"\n[schedule]\ncrawl = \"every day\"")
                .unwrap_err();
        assert_eq!(e.key, "schedule.crawl");
        let e =
            parse("[site]\nbase_url = \"https://b.example/\"\n[fetch]\ntimeout = 3").unwrap_err();
        assert_eq!(e.key, "fetch.timeout", "{e}");
        let e = parse("[site]\nbase_url = \"https://b.example/\"\n[fetch]\nmax_bytes = \"x\"")
            .unwrap_err();
        assert_eq!(e.key, "fetch.max_bytes", "{e}");
        assert_eq!(parse("[site\n").unwrap_err().key, "(syntax)");
        let e = parse("[site]\nbase_url = \"https://b.example/\"\n[moderation]\nmode = \"x\"")
            .unwrap_err();
        assert_eq!(e.key, "moderation.mode");
    }

    #[test]
    fn sites_are_one_table_or_many_named_and_unique() {
        let one = parse("[site]\nbase_url = \"https://Blog.example/\"\n").unwrap();
        assert_eq!(
            one.sites.list[0].name, "blog.example",
            "named after the host"
        );
        let two = "[[site]]\nname = \"anna\"\nbase_url = \"https://a.example/\"\nmoderation = \"queue\"\n\
                   [[site]]\nbase_url = \"https://b.example/bob/\"\n";
        let c = parse(two).unwrap();
        let names: Vec<&str> = c.sites.list.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["anna", "b.example"]);
        assert!(c.sites.named("anna").unwrap().holds);
        assert!(!c.sites.named("b.example").unwrap().holds);
        let same_base = "[[site]]\nname = \"a\"\nbase_url = \"https://a.example/\"\n\
                         [[site]]\nname = \"b\"\nbase_url = \"https://a.example/\"\n";
        assert_eq!(parse(same_base).unwrap_err().key, "site[1].base_url");
        let same_name = "[[site]]\nname = \"a\"\nbase_url = \"https://a.example/\"\n\
                         [[site]]\nname = \"a\"\nbase_url = \"https://b.example/\"\n";
        assert_eq!(parse(same_name).unwrap_err().key, "site[1].name");
        let bad = "[[site]]\nname = \"Anna!\"\nbase_url = \"https://a.example/\"\n";
        assert_eq!(parse(bad).unwrap_err().key, "site[0].name");
        let bad = "[[site]]\nbase_url = \"https://a.example/\"\nmoderation = \"x\"\n";
        assert_eq!(parse(bad).unwrap_err().key, "site[0].moderation");
        let unknown = "[[site]]\nbase_url = \"https://a.example/\"\ncolour = 1\n";
        assert_eq!(parse(unknown).unwrap_err().key, "site[0].colour");
    }
}
