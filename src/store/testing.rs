//! Throwaway PostgreSQL databases for tests: one per test, created on the server that
//! `BACKFEED_TEST_DATABASE_URL` names and dropped when the test ends. Without the variable a
//! test skips its PostgreSQL half (saying so), unless `BACKFEED_REQUIRE_POSTGRES=1` (CI), where
//! a missing server is a failure.

use super::db::{Conn, PgConn};
use std::time::Duration;

/// A database of its own for one test; dropped with it.
pub struct TestDatabase {
    /// `postgres://…/<name>`: what `[store] url_env` names.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (after saying "skipped") when no server is configured.
    pub fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var("BACKFEED_TEST_DATABASE_URL") else {
            if std::env::var("BACKFEED_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("BACKFEED_REQUIRE_POSTGRES=1 but BACKFEED_TEST_DATABASE_URL is unset");
            }
            eprintln!("{test}: PostgreSQL skipped (BACKFEED_TEST_DATABASE_URL is unset)");
            return None;
        };
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("random");
        let name = format!("backfeed_test_{}", hex::encode(bytes));
        let admin = Conn::Pg(
            PgConn::connect(&admin_url, Duration::from_secs(10)).unwrap_or_else(|e| {
                panic!("BACKFEED_TEST_DATABASE_URL: cannot connect to PostgreSQL: {e}")
            }),
        );
        admin
            .execute_batch(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        let mut url = url::Url::parse(&admin_url).expect("BACKFEED_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            url: url.to_string(),
            admin_url,
            name,
        })
    }

    /// The store's location in this database.
    pub fn location(&self) -> super::Location {
        super::Location::Postgres {
            url: self.url.clone(),
            pool_size: 8,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(admin) = PgConn::connect(&self.admin_url, Duration::from_secs(10)) {
            let _ = Conn::Pg(admin).execute_batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// What keeps a test's store alive: its directory, or its database.
#[cfg(test)]
pub(crate) enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database(#[allow(dead_code)] TestDatabase),
}

/// The store suite runs on both engines: a SQLite store in a new directory, and a PostgreSQL
/// store in a new database when a server is configured. Each comes with what keeps it (drop
/// the store first: tuples drop in order).
#[cfg(test)]
pub(crate) fn test_stores(test: &str) -> Vec<(super::Store, Keep)> {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![(
        super::Store::open(&dir.path().join("t.db")).unwrap(),
        Keep::Dir(dir),
    )];
    if let Some(db) = TestDatabase::create(test) {
        stores.push((
            super::Store::open_at(&db.location()).unwrap(),
            Keep::Database(db),
        ));
    }
    stores
}

/// A test's parameters, all text (the server converts them to each column's type).
fn text_params(params: &[&str]) -> Vec<super::db::Value> {
    params.iter().map(|p| super::db::Value::from(*p)).collect()
}

/// Plain SQL on a store, whatever its engine, for tests that reach past the interface (to age
/// a job, poison a row, break a table). Parameters are text; PostgreSQL converts them to the
/// column's type.
pub struct Sql(Conn);

impl Sql {
    pub fn open(location: &super::Location) -> Sql {
        Sql(location.connect().expect("the test's store opens"))
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&str]) -> usize {
        self.0
            .execute(sql, text_params(params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs statements without parameters.
    pub fn execute_batch(&self, sql: &str) {
        self.0
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row, as text (`None`: NULL, or no row).
    pub fn query_text(&self, sql: &str, params: &[&str]) -> Option<String> {
        self.0
            .query_row(sql, text_params(params), |r| r.get::<_, Option<String>>(0))
            .ok()
            .flatten()
    }

    /// The first column of the first row, as a number.
    pub fn query_i64(&self, sql: &str, params: &[&str]) -> i64 {
        self.query_text(sql, params)
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{sql}: no number"))
    }

    /// Every row, each column shown as text (`NULL` for NULL).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.0
            .for_each_row(sql, Vec::new(), |r| {
                let n = r.column_names().len();
                out.push(
                    (0..n)
                        .map(|i| {
                            r.get::<_, Option<String>>(i)
                                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                );
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out
    }
}
