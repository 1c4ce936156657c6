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

use crate::store::{ImportCounts, ImportedMention, Importer, Store};
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
}

/// Why an import stopped (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Malformed(String),
    #[error("store error: {0}")]
    Store(#[from] rusqlite::Error),
}

/// Imports `path` into `store`; returns what it counted.
pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    base_url: &url::Url,
) -> Result<ImportCounts, ImportError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let format = opts.format.as_str();
    store.import(format, opts.verify, opts.dry_run, |importer| {
        let mut sink = Sink {
            importer,
            opts,
            base_url,
        };
        match opts.format {
            Format::Wxr => wxr::read(file, &mut sink),
            Format::WebmentionIo => jf2::read(file, &mut sink),
            Format::Jsonl => read_jsonl(file, sink.importer),
        }
    })
}

/// Where parsers hand their records: rewrites applied, posts outside the site skipped.
struct Sink<'a, 'b> {
    importer: &'a mut Importer<'b>,
    opts: &'a ImportOptions,
    base_url: &'a url::Url,
}

impl Sink<'_, '_> {
    fn mention(&mut self, mut m: ImportedMention) -> Result<(), ImportError> {
        m.target = self.opts.rewrites.apply(&m.target);
        // The blog's own sources (self-pingbacks) moved with it.
        m.source = self.opts.rewrites.apply(&m.source);
        let under_site = url::Url::parse(&m.target).is_ok_and(|t| {
            crate::model::match_key(t.as_str()).is_some_and(|k| {
                crate::model::match_key(self.base_url.as_str())
                    .is_some_and(|base| k.starts_with(base.trim_end_matches('/')))
            })
        });
        if !under_site {
            self.importer.counts.read += 1;
            self.importer
                .counts
                .skip("post is not under [site] base_url (use --rewrite FROM=TO)");
            return Ok(());
        }
        self.importer.mention(&m)?;
        Ok(())
    }

    fn skip(&mut self, reason: &str) {
        self.importer.counts.read += 1;
        self.importer.counts.skip(reason);
    }
}

/// backfeed's own backup: one JSON object a line.
fn read_jsonl(file: impl BufRead, importer: &mut Importer<'_>) -> Result<(), ImportError> {
    for (n, line) in file.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line)
            .map_err(|e| ImportError::Malformed(format!("line {}: {e}", n + 1)))?;
        if !importer.backup_row(&row)? {
            importer.counts.skip("line of an unknown type");
        }
    }
    Ok(())
}
