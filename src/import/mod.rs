//! Moving in: another system's history as backfeed mentions — WordPress's own export (WXR),
//! webmention.io's JF2, and backfeed's lossless JSONL backup — in one transaction each, merged
//! by (source, post) so that the same file twice changes nothing.
//!
//! Imported mentions keep their kind and dates and say where they came from; reverify leaves
//! them as they are unless imported with `--verify` (the page behind a 2009 pingback is usually
//! gone, and its history is still worth showing). A record that cannot be a mention is skipped
//! and counted with its reason; a file that is not well-formed stops the import at the position
//! of the problem and leaves the store as it was.

mod jf2;
mod wxr;

use crate::store::{ImportCounts, ImportMode, ImportedMention, Importer, Store};
use std::io::BufRead;
use std::path::Path;

/// The formats `backfeed import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Wxr,
    WebmentionIo,
    Jsonl,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "wxr" => Some(Format::Wxr),
            "webmention.io" | "jf2" => Some(Format::WebmentionIo),
            "jsonl" => Some(Format::Jsonl),
            _ => None,
        }
    }

    /// The format a file's name suggests: `.xml` WXR, `.jsonl` backfeed's backup, `.json`
    /// webmention.io.
    pub fn guess(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "xml" | "wxr" => Some(Format::Wxr),
            "jsonl" => Some(Format::Jsonl),
            "json" | "jf2" => Some(Format::WebmentionIo),
            _ => None,
        }
    }

    /// The name recorded on imported mentions.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Wxr => "wxr",
            Format::WebmentionIo => "webmention.io",
            Format::Jsonl => "jsonl",
        }
    }
}

/// URL prefixes to rewrite (a blog that moved domain or path): `FROM=TO`.
#[derive(Clone, Debug, Default)]
pub struct Rewrites(Vec<(String, String)>);

impl Rewrites {
    /// Parses `FROM=TO` pairs; the error names the one that is not.
    pub fn parse(pairs: &[String]) -> Result<Rewrites, String> {
        pairs
            .iter()
            .map(|p| {
                p.split_once('=')
                    .filter(|(from, to)| !from.is_empty() && !to.is_empty())
                    .map(|(from, to)| (from.to_string(), to.to_string()))
                    .ok_or_else(|| format!("--rewrite {p:?}: write FROM=TO, e.g. http://old.example/=https://new.example/"))
            })
            .collect::<Result<_, _>>()
            .map(Rewrites)
    }

    /// `url` with the first matching prefix replaced.
    pub fn apply(&self, url: &str) -> String {
        self.0
            .iter()
            .find_map(|(from, to)| {
                url.strip_prefix(from.as_str())
                    .map(|rest| format!("{to}{rest}"))
            })
            .unwrap_or_else(|| url.to_string())
    }
}

/// What `backfeed import` was asked.
pub struct ImportOptions {
    pub format: Format,
    pub rewrites: Rewrites,
    pub verify: bool,
    pub dry_run: bool,
    /// The types of mention kept (`[moderation] collect`); others are skipped.
    pub collect: Vec<String>,
}

/// Why an import stopped (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Malformed(String),
    #[error("store error: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Imports `path` into `store`; returns what it counted. The file is read twice: once to
/// check it whole (a malformed file stops here, and nothing is written), then to write it: in
/// chunks beside a daemon, so that the store's write lock is never held for a whole file, or in
/// bulk when alone with a SQLite store (see `store::import`). `--dry-run` reads it once, in one
/// transaction rolled back.
pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    routes: &crate::sites::Routes,
) -> Result<ImportCounts, ImportError> {
    let pass = |mode: ImportMode| -> Result<ImportCounts, ImportError> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        store.import(opts.format.as_str(), opts.verify, mode, |importer| {
            let mut sink = Sink {
                importer,
                opts,
                routes,
            };
            match opts.format {
                Format::Wxr => wxr::read(file, &mut sink),
                Format::WebmentionIo => jf2::read(file, &mut sink),
                Format::Jsonl => read_jsonl(file, sink.importer),
            }
        })
    };
    if opts.dry_run {
        return pass(ImportMode::DryRun);
    }
    let checked = pass(ImportMode::Check)?;
    pass(ImportMode::Write {
        records: checked.read,
    })
}

/// Where parsers hand their records: rewrites applied, posts outside the site skipped.
struct Sink<'a, 'b> {
    importer: &'a mut Importer<'b>,
    opts: &'a ImportOptions,
    /// The sites served: a post under none of them is skipped.
    routes: &'a crate::sites::Routes,
}

impl Sink<'_, '_> {
    fn mention(&mut self, mut m: ImportedMention) -> Result<(), ImportError> {
        if self.importer.checking() {
            // The file's form is what the first reading checks; it counts the records.
            self.importer.mention(&m)?;
            return Ok(());
        }
        m.target = self.opts.rewrites.apply(&m.target);
        // The blog's own sources (self-pingbacks) moved with it.
        m.source = self.opts.rewrites.apply(&m.source);
        let under_site = url::Url::parse(&m.target).is_ok_and(|t| self.routes.route(&t).is_some());
        let kind_of = m
            .facts
            .mention_type
            .unwrap_or(crate::model::MentionType::Mention);
        if !self.opts.collect.iter().any(|t| t == kind_of.as_str()) {
            self.skip("type not collected ([moderation] collect)");
            return Ok(());
        }
        if !under_site {
            self.importer.counts.read += 1;
            self.importer
                .counts
                .skip("post is not under any site's base_url (use --rewrite FROM=TO)");
            return Ok(());
        }
        // Every record is cleaned as the verifier cleans a page's facts: an import is as
        // untrusted as any source page.
        let Some(base) = url::Url::parse(&m.source)
            .ok()
            .filter(|s| crate::model::is_web_url(s.as_str()))
        else {
            self.skip("source or target is not an http(s) URL");
            return Ok(());
        };
        crate::verify::clean_untrusted(&mut m.facts, &base);
        self.importer.mention(&m)?;
        Ok(())
    }

    fn skip(&mut self, reason: &str) {
        self.importer.counts.read += 1;
        self.importer.counts.skip(reason);
    }
}

/// Longest line a backup may have: a mention's row is a few KiB (its content is at most 8 KiB
/// of HTML); anything far longer is not a backfeed backup line, and is not read into memory.
const JSONL_LINE_MAX: usize = 4 * 1024 * 1024;

/// backfeed's own backup: one JSON object a line.
fn read_jsonl(mut file: impl BufRead, importer: &mut Importer<'_>) -> Result<(), ImportError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    for n in 1.. {
        bytes.clear();
        let read = (&mut file)
            .take(JSONL_LINE_MAX as u64 + 1)
            .read_until(b'\n', &mut bytes)?;
        if read == 0 {
            break;
        }
        if bytes.len() > JSONL_LINE_MAX {
            return Err(ImportError::Malformed(format!(
                "line {n} is longer than {} MiB: not a line of a backfeed backup",
                JSONL_LINE_MAX / (1024 * 1024)
            )));
        }
        let line = std::str::from_utf8(&bytes).map_err(|e| {
            ImportError::Malformed(format!("line {n}: not UTF-8 at byte {}", e.valid_up_to()))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let mut row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| ImportError::Malformed(format!("line {n}: {e}")))?;
        if !clean_backup_row(&mut row) {
            importer.counts.read += 1;
            importer
                .counts
                .skip("a post or mention whose URL is not http(s)");
            continue;
        }
        if !importer.backup_row(&row)? {
            importer.counts.skip("line of an unknown type");
        }
    }
    Ok(())
}

/// A backup line cleaned like every other way in: a backup is a file anyone could have written,
/// so a restored mention's facts pass [`crate::verify::clean_untrusted`] and its URLs the one
/// URL rule ([`crate::model::is_web_url`]); a post's title is plain text. `false` for a post or
/// mention whose own URL is not http(s) (it is skipped).
fn clean_backup_row(row: &mut serde_json::Map<String, serde_json::Value>) -> bool {
    use serde_json::Value;
    let text = |row: &serde_json::Map<String, Value>, key: &str| {
        row.get(key).and_then(Value::as_str).map(str::to_string)
    };
    let web = |url: Option<String>| url.filter(|u| crate::model::is_web_url(u));
    let put = |row: &mut serde_json::Map<String, Value>, key: &str, v: Option<String>| {
        if row.contains_key(key) {
            row.insert(key.into(), v.map_or(Value::Null, Value::from));
        }
    };
    match row.get("table").and_then(Value::as_str) {
        Some("posts") => {
            if web(text(row, "url")).is_none() {
                return false;
            }
            let title = text(row, "title")
                .map(|t| crate::text::truncate(&crate::text::collapse(&t), 200))
                .filter(|t| !t.is_empty());
            put(row, "title", title);
            true
        }
        Some("mentions") => {
            let Some(base) = web(text(row, "source")).and_then(|s| url::Url::parse(&s).ok()) else {
                return false;
            };
            let mut facts = crate::model::Extracted {
                title: text(row, "title"),
                author: crate::model::Author {
                    name: text(row, "author_name"),
                    url: text(row, "author_url"),
                    photo: text(row, "author_photo"),
                },
                published: text(row, "published"),
                excerpt: text(row, "excerpt"),
                content_html: text(row, "content_html"),
                ..Default::default()
            };
            crate::verify::clean_untrusted(&mut facts, &base);
            put(row, "title", facts.title);
            put(row, "author_name", facts.author.name);
            put(row, "author_url", facts.author.url);
            put(row, "author_photo", facts.author.photo);
            put(row, "published", facts.published);
            put(row, "excerpt", facts.excerpt);
            put(row, "content_html", facts.content_html);
            let final_url = web(text(row, "final_url"));
            put(row, "final_url", final_url);
            true
        }
        // What `/api/deleted.json` tells site builds names two web addresses.
        Some("unpublished") => {
            web(text(row, "source")).is_some() && web(text(row, "target")).is_some()
        }
        _ => true,
    }
}

/// Decodes the HTML escapes WordPress leaves in pingback titles and names (`Dave&#039;s Weblog
/// &laquo; …`) in mentions imported before import decoded them; returns how many changed.
/// Run as an older store is upgraded (the first command of this version) and by `backfeed
/// migrate`: once a store is repaired, nothing matches.
pub fn repair_escaped_texts(store: &Store) -> Result<usize, crate::store::StoreError> {
    let decode =
        |text: &Option<String>| text.as_deref().map(decoded_text).filter(|t| !t.is_empty());
    let fixes: Vec<_> = store
        .escaped_imported_texts()?
        .into_iter()
        .filter_map(|(id, title, author)| {
            let (new_title, new_author) = (decode(&title), decode(&author));
            (new_title != title || new_author != author).then_some((id, new_title, new_author))
        })
        .collect();
    if !fixes.is_empty() {
        store.set_mention_texts(&fixes)?;
    }
    Ok(fixes.len())
}

/// Text a file keeps HTML-escaped (WordPress's names and titles: `Dave&#039;s Weblog &laquo;
/// …`) as the text a reader saw: escapes decoded once, tags dropped, whitespace tidied.
fn decoded_text(escaped: &str) -> String {
    crate::text::collapse(&crate::verify::html_text(escaped))
}
