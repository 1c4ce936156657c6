//! One connection, whatever the engine: the few things the store's SQL needs from a database
//! (run a statement, read rows, transactions and savepoints), over SQLite (rusqlite) or
//! PostgreSQL (tokio-postgres).
//!
//! Why a connection of our own rather than one implementation of every store function per
//! engine: the store's SQL is written once, in the dialect both engines share (`ON CONFLICT`,
//! `RETURNING`, `IS DISTINCT FROM`, row values, partial indexes), so one behaviour is one
//! piece of code and the store suite proves it twice. What differs stays here: placeholders
//! (`?1` becomes `$1` for PostgreSQL), values (PostgreSQL's types are strict: a parameter is
//! encoded as the type the server inferred for it, and a column is read by its type; the
//! store's times are RFC 3339 text here and `timestamptz` there: a time parameter whose type
//! the server cannot infer — one branch of a `CASE` of parameters — is written
//! `CAST(?N AS time_text)`, text to SQLite, `timestamptz` to PostgreSQL), the statement
//! cache and transactions. The schemas (`migrations`) are the engines' own.
//!
//! Every call is synchronous, as rusqlite's are: the thread that calls waits for its answer,
//! driving the PostgreSQL connection itself and sleeping on its socket (`pg_socket`), so that
//! the store is called the same way from async tasks and from threads. Statements that do not
//! wait for each other's answers can go together ([`Conn::pipeline`]): one round trip to
//! PostgreSQL for all of them, in order.

use super::pg_socket::{self, WaitedSocket};
use super::{StoreError, StoreResult};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

/// A value going into or coming out of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

/// A borrowed value for a statement's parameter.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// What can be a statement's parameter.
pub trait Param {
    fn value(&self) -> ValueRef<'_>;
}

impl Param for i64 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(*self)
    }
}

impl Param for i32 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl Param for u16 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl Param for u32 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl Param for usize {
    /// Saturating: `usize::MAX` ("no limit") is `i64::MAX`, not -1.
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(t.to_string()),
        }
    }
}

impl Param for bool {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl Param for Value {
    fn value(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Int(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v),
        }
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> ValueRef<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, Param::value)
    }
}

/// A statement's parameters, in order (`?1` is the first).
pub trait Params {
    fn values(&self) -> Vec<ValueRef<'_>>;
}

impl Params for [&dyn Param; 0] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        Vec::new()
    }
}

impl Params for &[&dyn Param] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(|p| p.value()).collect()
    }
}

impl Params for &[Value] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(Param::value).collect()
    }
}

impl Params for &[ValueRef<'_>] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.to_vec()
    }
}

impl Params for Vec<Value> {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(Param::value).collect()
    }
}

macro_rules! params_for_arrays {
    ($($n:literal)*) => {$(
        impl<T: Param> Params for [T; $n] {
            fn values(&self) -> Vec<ValueRef<'_>> {
                self.iter().map(Param::value).collect()
            }
        }
    )*};
}
params_for_arrays!(1 2 3 4 5 6 7 8);

/// A statement's parameters of several types: `params![a, b]`.
macro_rules! params {
    () => { [] as [&dyn $crate::store::db::Param; 0] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::Param),+] as &[&dyn $crate::store::db::Param] };
}
pub(crate) use params;

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(i),
            Value::Real(f) => Some(f as i64),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }
}

impl FromValue for usize {
    fn from_value(v: Value) -> Option<usize> {
        i64::from_value(v).and_then(|i| usize::try_from(i).ok())
    }
}

impl FromValue for u32 {
    fn from_value(v: Value) -> Option<u32> {
        i64::from_value(v).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Option<bool> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Option<f64> {
        match v {
            Value::Int(i) => Some(i as f64),
            Value::Real(f) => Some(f),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Option<String> {
        match v {
            Value::Text(t) => Some(t),
            Value::Int(i) => Some(i.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Null => None,
        }
    }
}

impl FromValue for Value {
    fn from_value(v: Value) -> Option<Value> {
        Some(v)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column's position (a trait of one implementation, so that `row.get(0)` needs no suffix).
pub trait ColIndex {
    fn index(self) -> usize;
}

impl ColIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of an answer.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `at` as `T` (a NULL read as anything but an `Option` is an error).
    pub fn get<I: ColIndex, T: FromValue>(&self, at: I) -> StoreResult<T> {
        let at = at.index();
        let value = match self {
            Row::Lite(r) => match r.get_ref(at)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            },
            Row::Pg(r) => r.try_get::<_, PgValue>(at)?.0,
        };
        // What the column held, named only when the read fails (not formatted on every read).
        let held = match &value {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
        };
        T::from_value(value).ok_or_else(|| {
            StoreError::Database(
                format!(
                    "column {at} holds {held}, not a {}",
                    std::any::type_name::<T>()
                )
                .into(),
            )
        })
    }

    /// The columns' names.
    pub fn column_names(&self) -> Vec<String> {
        match self {
            Row::Lite(r) => r.as_ref().column_names().map(|s| s.to_string()).collect(),
            Row::Pg(r) => r.columns().iter().map(|c| c.name().to_string()).collect(),
        }
    }
}

/// `None` for a query that found no row.
pub trait OptionalExtension<T> {
    fn optional(self) -> StoreResult<Option<T>>;
}

impl<T> OptionalExtension<T> for StoreResult<T> {
    fn optional(self) -> StoreResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Which engine a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection to the store's database.
pub enum Conn {
    Lite(rusqlite::Connection),
    Pg(PgConn),
}

/// A statement about to run (`c.prepare_cached(sql)?.query_row(…)`, as with rusqlite).
pub struct Stmt<'c> {
    conn: &'c Conn,
    sql: std::borrow::Cow<'c, str>,
}

impl Stmt<'_> {
    pub fn execute<P: Params>(&self, params: P) -> StoreResult<usize> {
        self.conn.execute(&self.sql, params)
    }

    pub fn query_row<T, P: Params>(
        &self,
        params: P,
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.conn.query_row(&self.sql, params, f)
    }

    pub fn query_map<T, P: Params>(
        &self,
        params: P,
        f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<std::vec::IntoIter<StoreResult<T>>> {
        self.conn.query_map(&self.sql, params, f)
    }

    pub fn exists<P: Params>(&self, params: P) -> StoreResult<bool> {
        self.conn
            .query_row(&self.sql, params, |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }
}

/// A transaction (or a savepoint inside one): rolled back when dropped uncommitted.
pub struct Tx<'c> {
    conn: &'c Conn,
    /// The savepoint's name; `None` for the transaction itself.
    savepoint: Option<&'static str>,
    done: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Tx<'_> {
    pub fn commit(mut self) -> StoreResult<()> {
        self.done = true;
        match self.savepoint {
            None => self.conn.execute_batch("COMMIT"),
            Some(name) => self.conn.execute_batch(&format!("RELEASE {name}")),
        }
    }

    /// A savepoint inside this transaction.
    pub fn savepoint(&self) -> StoreResult<Tx<'_>> {
        self.conn.execute_batch("SAVEPOINT unit")?;
        Ok(Tx {
            conn: self.conn,
            savepoint: Some("unit"),
            done: false,
        })
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = match self.savepoint {
            None => self.conn.execute_batch("ROLLBACK"),
            Some(name) => self
                .conn
                .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}")),
        };
    }
}

impl Conn {
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Lite(_) => Engine::Sqlite,
            Conn::Pg(_) => Engine::Postgres,
        }
    }

    /// The statement `sql`, through the connection's statement cache (see [`Conn::execute`]).
    pub fn prepare_cached<'c>(
        &'c self,
        sql: impl Into<std::borrow::Cow<'c, str>>,
    ) -> StoreResult<Stmt<'c>> {
        Ok(Stmt {
            conn: self,
            sql: sql.into(),
        })
    }

    /// The same as [`Conn::prepare_cached`]: every statement goes through the cache.
    pub fn prepare<'c>(
        &'c self,
        sql: impl Into<std::borrow::Cow<'c, str>>,
    ) -> StoreResult<Stmt<'c>> {
        self.prepare_cached(sql)
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> StoreResult<usize> {
        let values = params.values();
        match self {
            Conn::Lite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(values.iter().map(lite_value)))?),
            Conn::Pg(c) => c.execute(sql, &values),
        }
    }

    /// [`Conn::execute`] (the name the store's hot paths have used since rusqlite's cache).
    pub fn run<P: Params>(&self, sql: &str, params: P) -> StoreResult<usize> {
        self.execute(sql, params)
    }

    /// Runs statements without parameters, one after the other.
    pub fn execute_batch(&self, sql: &str) -> StoreResult<()> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(c) => c.batch(sql),
        }
    }

    /// Calls `f` on every row of the answer, in order, without holding them all.
    pub fn for_each_row<P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let values = params.values();
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(lite_value)))?;
                while let Some(row) = rows.next()? {
                    f(&Row::Lite(row))?;
                }
                Ok(())
            }
            Conn::Pg(c) => c.for_each_row(sql, &values, |r| f(&Row::Pg(r))),
        }
    }

    /// The first row of the answer through `f`; [`StoreError::NotFound`] when there is none.
    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut f = Some(f);
        let mut found = None;
        self.for_each_row(sql, params, |row| {
            if let Some(f) = f.take() {
                found = Some(f(row)?);
            }
            Ok(())
        })?;
        found.ok_or(StoreError::NotFound)
    }

    /// Every row of the answer through `f`.
    pub fn query_map<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<std::vec::IntoIter<StoreResult<T>>> {
        let mut out = Vec::new();
        self.for_each_row(sql, params, |row| {
            out.push(f(row));
            Ok(())
        })?;
        Ok(out.into_iter())
    }

    /// Runs the statements of `piped`, in order; each answer's rows go to its `each`.
    ///
    /// On PostgreSQL they are sent together and answered together: one round trip, however
    /// many statements (the server still runs them one after the other, so a statement sees
    /// what those before it wrote). Meant for a transaction, where a failing statement fails
    /// the rest with it; outside one each commits alone, and those after a failing one still
    /// run. The first error is returned; a statement that depends on an earlier one's answer
    /// belongs in a later pipeline.
    pub(super) fn pipeline(&self, mut piped: Vec<Piped<'_>>) -> StoreResult<()> {
        match self {
            Conn::Lite(_) => {
                for Piped { statements, each } in &mut piped {
                    for (sql, values) in statements.iter() {
                        self.for_each_row(sql, &values[..], &mut *each)?;
                    }
                }
                Ok(())
            }
            Conn::Pg(c) => c.pipeline(&mut piped),
        }
    }

    /// Begins a transaction (SQLite: taking the write lock at once, so that a transaction
    /// that reads then writes waits its turn instead of failing).
    pub fn transaction(&self) -> StoreResult<Tx<'_>> {
        self.begin()?;
        Ok(Tx {
            conn: self,
            savepoint: None,
            done: false,
        })
    }

    /// Begins a transaction by hand (`COMMIT` or `ROLLBACK` ends it); see [`Conn::transaction`].
    /// On PostgreSQL the `BEGIN` goes with the transaction's first statement, in its round trip.
    pub fn begin(&self) -> StoreResult<()> {
        match self {
            Conn::Lite(_) => self.execute_batch("BEGIN IMMEDIATE"),
            Conn::Pg(c) => {
                c.begin_pending.set(true);
                Ok(())
            }
        }
    }

    /// Whether the connection is gone (PostgreSQL's, after the server restarted).
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::Lite(_) => false,
            Conn::Pg(c) => c.is_closed(),
        }
    }

    /// Whether no transaction is open (SQLite rolls one back by itself after some errors).
    pub fn is_autocommit(&self) -> bool {
        match self {
            Conn::Lite(c) => c.is_autocommit(),
            Conn::Pg(_) => false,
        }
    }

    /// The columns of `table`, by name.
    pub fn column_names(&self, table: &str) -> StoreResult<Vec<String>> {
        match self {
            Conn::Lite(c) => Ok(c
                .prepare(&format!("SELECT * FROM {table} LIMIT 0"))?
                .column_names()
                .map(str::to_string)
                .collect()),
            Conn::Pg(c) => c.query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[ValueRef::Text(table)],
                |r| r.get::<_, String>(0),
            ),
        }
    }
}

fn lite_value<'a>(v: &'a ValueRef<'a>) -> rusqlite::types::ToSqlOutput<'a> {
    use rusqlite::types::{ToSqlOutput, ValueRef as L};
    ToSqlOutput::Borrowed(match *v {
        ValueRef::Null => L::Null,
        ValueRef::Int(i) => L::Integer(i),
        ValueRef::Real(f) => L::Real(f),
        ValueRef::Text(t) => L::Text(t.as_bytes()),
    })
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            e => StoreError::Database(Box::new(e)),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        StoreError::Database(Box::new(PgError(e)))
    }
}

/// PostgreSQL's error with the server's message in its text (tokio-postgres's own display
/// says only "db error").
#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "PostgreSQL: {}", db.message()),
            None => {
                // The cause says what to do (a certificate no root vouches for, a refused
                // connection); the top line alone often does not.
                write!(f, "PostgreSQL: {}", self.0)?;
                let mut cause = std::error::Error::source(&self.0);
                while let Some(inner) = cause {
                    write!(f, ": {inner}")?;
                    cause = inner.source();
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for PgError {}

/// The longest run of rows [`Piped::in_runs`] puts in one statement.
const LONGEST_RUN: usize = 32;

/// What is done with each row of an answer.
type EachRow<'a> = Box<dyn FnMut(&Row<'_>) -> StoreResult<()> + 'a>;

/// Statements of one kind for [`Conn::pipeline`], and what is done with each row of their
/// answers.
pub(super) struct Piped<'a> {
    statements: Vec<(String, Vec<ValueRef<'a>>)>,
    each: EachRow<'a>,
}

impl<'a> Piped<'a> {
    /// `statement` over `items` in runs of 1, 2, 4 … [`LONGEST_RUN`]: `statement(rows)` is the
    /// text for a run, `rows` being `row` once per item of the run, its `?` numbered on
    /// (`(?1, ?2), (?3, ?4)`); `values` gives an item's values. A handful of texts serve any
    /// number of items, each kept prepared by the connection.
    pub fn in_runs<T>(
        items: &'a [T],
        row: &str,
        statement: impl Fn(&str) -> String,
        values: impl Fn(&'a T) -> Vec<ValueRef<'a>>,
    ) -> Piped<'a> {
        let mut statements = Vec::new();
        let mut rest = items;
        while !rest.is_empty() {
            let run = LONGEST_RUN.min(1 << rest.len().ilog2());
            let (these, after) = rest.split_at(run);
            let mut next = 0;
            let rows: Vec<String> = (0..run)
                .map(|_| {
                    row.split('?')
                        .enumerate()
                        .map(|(i, part)| match i {
                            0 => part.to_string(),
                            _ => {
                                next += 1;
                                format!("?{next}{part}")
                            }
                        })
                        .collect()
                })
                .collect();
            let args: Vec<ValueRef<'a>> = these.iter().flat_map(&values).collect();
            statements.push((statement(&rows.join(", ")), args));
            rest = after;
        }
        Piped {
            statements,
            each: Box::new(|_| Ok(())),
        }
    }

    /// `f` sees every row of every answer (nothing does, unless said).
    pub fn each(self, f: impl FnMut(&Row<'_>) -> StoreResult<()> + 'a) -> Piped<'a> {
        Piped {
            each: Box::new(f),
            ..self
        }
    }
}

// ---- PostgreSQL ----------------------------------------------------------------------------

/// A connection's I/O (tokio-postgres's `Connection`), driven by whoever waits on it.
type ConnectionIo = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The longest one statement may run before the server cancels it (a runaway query must not
/// hold the store's writer forever).
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The longest a statement waits for a lock another session holds.
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest a transaction may sit idle before the server ends it.
pub const IDLE_IN_TRANSACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// What a connection that listens does with a notification's payload (see [`PgConn::hear`]).
pub type Hearing = Box<dyn FnMut(&str) + Send>;

/// A connection's I/O, ready to be driven by [`PgConn::wait`]; its end is logged, and each
/// notification it brings is given to `hearing`. The server's warnings are logged as
/// warnings; its other notices (`CREATE TABLE IF NOT EXISTS` at every start says "already
/// exists, skipping") only at debug level.
fn connection_io<T>(
    mut connection: tokio_postgres::Connection<WaitedSocket, T>,
    mut hearing: Option<Hearing>,
) -> ConnectionIo
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use std::task::Poll;
    use tokio_postgres::AsyncMessage;
    Box::pin(std::future::poll_fn(move |cx| {
        loop {
            match connection.poll_message(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %PgError(e), "a PostgreSQL connection ended");
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                    if let Some(hear) = hearing.as_mut() {
                        hear(n.payload());
                    }
                }
                Poll::Ready(Some(Ok(AsyncMessage::Notice(notice)))) => {
                    if notice.severity() == "WARNING" {
                        tracing::warn!("PostgreSQL: {}", notice.message());
                    } else {
                        tracing::debug!(severity = %notice.severity(), "PostgreSQL: {}", notice.message());
                    }
                }
                Poll::Ready(Some(Ok(_))) => {}
            }
        }
    }))
}

/// The startup of a connection on `socket` (TLS when `tls` says so, authentication, the
/// session's settings), within `timeout`.
fn start_session<T>(
    config: &tokio_postgres::Config,
    socket: WaitedSocket,
    tls: T,
    timeout: std::time::Duration,
    hearing: Option<Hearing>,
) -> StoreResult<(tokio_postgres::Client, ConnectionIo)>
where
    T: tokio_postgres::tls::TlsConnect<WaitedSocket>,
    T::Stream: Send + 'static,
{
    let readiness = socket.readiness();
    let deadline = std::time::Instant::now() + timeout;
    let mut starting = std::pin::pin!(config.connect_raw(socket, tls));
    let started = pg_socket::wait_on(&readiness, |cx| {
        if std::time::Instant::now() > deadline {
            return std::task::Poll::Ready(Err(format!(
                "no answer within {} s",
                timeout.as_secs()
            )));
        }
        starting
            .as_mut()
            .poll(cx)
            .map_err(|e| PgError(e).to_string())
    });
    let (client, connection) = started
        .map_err(|e| StoreError::Database(format!("connecting to PostgreSQL: {e}").into()))?;
    Ok((client, connection_io(connection, hearing)))
}

/// TLS for `sslmode=require` and stricter: rustls with the platform's certificate verifier.
fn tls_connector() -> StoreResult<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| StoreError::Database(format!("TLS for PostgreSQL: {e}").into()))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Begins a statement whose best plan depends on its values: on PostgreSQL it is prepared
/// for each call, never kept, so it is always planned for the values it runs with. A kept
/// statement may, after five runs, be given a generic plan, one for any value — and for the
/// mentions of a post, that plan (made for a post with a hundred) read and sorted all 100,000
/// of a viral post's to show twenty of them: 22 s instead of 49 ms. SQLite reads it as a comment.
pub const PLANNED_PER_CALL: &str = "/* planned per call */ ";

/// One PostgreSQL connection with its prepared statements.
///
/// The connection's I/O is not a task of its own: the thread that waits for an answer drives
/// it (writes the request, reads the answer) and sleeps in `poll(2)` on the socket until it is
/// ready ([`pg_socket`]). A task on another thread cost three thread wake-ups a statement, and
/// at ~15 statements a verification the store spent more time switching threads than in
/// PostgreSQL; a runtime's reactor waking the waiting thread still cost two.
pub struct PgConn {
    client: tokio_postgres::Client,
    /// The socket the waiting thread sleeps on.
    readiness: pg_socket::Readiness,
    /// `None` once the connection ended (the server went away).
    io: RefCell<Option<ConnectionIo>>,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// A transaction begun and not yet told the server (see [`PgConn::request`]).
    begin_pending: std::cell::Cell<bool>,
}

impl PgConn {
    /// Connects to `url` (a `postgres://` URL or a key=value string) within `timeout`.
    ///
    /// TLS: `sslmode=require`, `verify-ca` or `verify-full` encrypt, and the server's certificate
    /// is always verified against the system's roots, host name included (stricter than libpq's
    /// `require`: an unverified channel is one anyone on the path can read). `prefer`, `disable`
    /// or no `sslmode` connect in the clear, as on a local socket or a private network.
    ///
    /// Every session caps its waits: a statement runs at most [`STATEMENT_TIMEOUT`], waits for a
    /// lock at most [`LOCK_TIMEOUT`], and a transaction left idle (its process stalled) is ended
    /// by the server after [`IDLE_IN_TRANSACTION_TIMEOUT`], releasing its row locks.
    pub fn connect(url: &str, timeout: std::time::Duration) -> StoreResult<PgConn> {
        PgConn::connect_hearing(url, timeout, None)
    }

    /// [`PgConn::connect`], each notification the connection brings given to `hearing` (see
    /// [`PgConn::hear`]).
    pub fn connect_hearing(
        url: &str,
        timeout: std::time::Duration,
        hearing: Option<Hearing>,
    ) -> StoreResult<PgConn> {
        let strict = url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config: tokio_postgres::Config = strict
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Database(Box::new(PgError(e))))?;
        config.connect_timeout(timeout);
        if config.get_application_name().is_none() {
            config.application_name("backfeed");
        }
        let caps = format!(
            "-c statement_timeout={}s -c lock_timeout={}s -c idle_in_transaction_session_timeout={}s",
            STATEMENT_TIMEOUT.as_secs(),
            LOCK_TIMEOUT.as_secs(),
            IDLE_IN_TRANSACTION_TIMEOUT.as_secs()
        );
        let options = match config.get_options() {
            Some(own) => format!("{caps} {own}"),
            None => caps,
        };
        config.options(options);
        let (socket, host) = WaitedSocket::connect(&config, timeout)?;
        let readiness = socket.readiness();
        let (client, io) = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Require => {
                use tokio_postgres::tls::MakeTlsConnect;
                let tls =
                    MakeTlsConnect::<WaitedSocket>::make_tls_connect(&mut tls_connector()?, &host)
                        .map_err(|e| {
                            StoreError::Database(format!("TLS for PostgreSQL: {e}").into())
                        })?;
                start_session(&config, socket, tls, timeout, hearing)?
            }
            _ => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                start_session(&config, socket, tokio_postgres::NoTls, timeout, hearing)?
            }
        };
        Ok(PgConn {
            client,
            readiness,
            io: RefCell::new(Some(io)),
            statements: RefCell::new(HashMap::new()),
            begin_pending: std::cell::Cell::new(false),
        })
    }

    /// Waits for `f`, a request to the server. A transaction begun since the last request
    /// ([`Conn::begin`]) is begun first, in the same round trip: the `BEGIN` is written with
    /// the request and answered before it (a round trip fewer a transaction: a group commit
    /// was BEGIN, its statements, COMMIT).
    fn request<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        if !self.begin_pending.replace(false) {
            return self.wait(f);
        }
        let (began, answer) = self.wait(futures_util::future::join(
            self.client.batch_execute("BEGIN"),
            f,
        ));
        began?;
        answer
    }

    /// Waits for `f`, driving the connection's I/O meanwhile (see `pg_socket`).
    fn wait<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        use std::task::Poll;
        let mut io = self.io.borrow_mut();
        let mut f = std::pin::pin!(f);
        pg_socket::wait_on(&self.readiness, |cx| {
            loop {
                if let Poll::Ready(out) = f.as_mut().poll(cx) {
                    return Poll::Ready(out);
                }
                let Some(driven) = io.as_mut() else {
                    // Ended: what waited on it fails at its next poll (never a socket's sleep:
                    // the descriptor is closed).
                    std::thread::yield_now();
                    continue;
                };
                if driven.as_mut().poll(cx).is_ready() {
                    *io = None;
                    continue;
                }
                // The I/O may have brought the answer.
                return f.as_mut().poll(cx);
            }
        })
    }

    /// Listens on `channel` and drives the connection, its notifications given to the
    /// `hearing` it was opened with, until it ends (an error, the server gone) or `stop` says
    /// so (asked at least once a second); `listening` is called once the server listens.
    pub fn hear(
        &self,
        channel: &str,
        listening: impl FnOnce(),
        stop: impl Fn() -> bool,
    ) -> StoreResult<()> {
        use std::task::Poll;
        self.batch(&format!("LISTEN {channel}"))?;
        listening();
        let mut io = self.io.borrow_mut();
        pg_socket::wait_on(&self.readiness, |cx| {
            let Some(driven) = io.as_mut() else {
                return Poll::Ready(());
            };
            if stop() || driven.as_mut().poll(cx).is_ready() {
                *io = None;
                return Poll::Ready(());
            }
            Poll::Pending
        });
        Ok(())
    }

    /// Whether the connection is gone (the server restarted): such a connection is dropped.
    /// An idle connection's I/O is looked at once, so a server that went away meanwhile is
    /// noticed here rather than by the next statement.
    pub fn is_closed(&self) -> bool {
        let mut io = self.io.borrow_mut();
        if let Some(driven) = io.as_mut() {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if driven.as_mut().poll(&mut cx).is_ready() {
                *io = None;
            }
        }
        io.is_none() || self.client.is_closed()
    }

    /// `sql` prepared (once per connection, unless it begins with [`PLANNED_PER_CALL`]);
    /// PostgreSQL infers each parameter's type from where it stands (so a statement uses
    /// every parameter it is given).
    fn statement(&self, sql: &str) -> StoreResult<tokio_postgres::Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let statement = self.request(self.client.prepare(&pg_dialect(sql)))?;
        if sql.starts_with(PLANNED_PER_CALL) {
            return Ok(statement);
        }
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn execute(&self, sql: &str, values: &[ValueRef<'_>]) -> StoreResult<usize> {
        let statement = self.statement(sql)?;
        let args: Vec<PgArg<'_>> = values.iter().map(|v| PgArg(*v)).collect();
        let n = self.request(self.client.execute_raw(&statement, args.iter()))?;
        Ok(n as usize)
    }

    fn query<T>(
        &self,
        sql: &str,
        values: &[ValueRef<'_>],
        mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        self.for_each_row(sql, values, |r| {
            out.push(f(&Row::Pg(r))?);
            Ok(())
        })?;
        Ok(out)
    }

    fn for_each_row(
        &self,
        sql: &str,
        values: &[ValueRef<'_>],
        mut f: impl FnMut(&tokio_postgres::Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        use futures_util::StreamExt;
        let statement = self.statement(sql)?;
        let args: Vec<PgArg<'_>> = values.iter().map(|v| PgArg(*v)).collect();
        let rows = self.request(self.client.query_raw(&statement, args.iter()))?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = self.wait(rows.next()) {
            f(&row?)?;
        }
        Ok(())
    }

    fn batch(&self, sql: &str) -> StoreResult<()> {
        Ok(self.request(self.client.batch_execute(sql))?)
    }

    /// See [`Conn::pipeline`]: every statement is written before the first answer is read.
    fn pipeline(&self, piped: &mut [Piped<'_>]) -> StoreResult<()> {
        use futures_util::TryStreamExt;
        let mut requests = Vec::new();
        for (sql, values) in piped.iter().flat_map(|p| &p.statements) {
            let args: Vec<PgArg<'_>> = values.iter().map(|v| PgArg(*v)).collect();
            requests.push((self.statement(sql)?, args));
        }
        let answers = self.request(async {
            Ok(
                all_in_order(requests.iter().map(|(statement, args)| async move {
                    let rows = self.client.query_raw(statement, args.iter()).await?;
                    rows.try_collect::<Vec<_>>().await
                }))
                .await,
            )
        })?;
        let mut answers = answers.into_iter();
        for Piped { statements, each } in piped {
            for _ in statements.iter() {
                let rows = answers.next().expect("an answer for every statement")?;
                for row in &rows {
                    each(&Row::Pg(row))?;
                }
            }
        }
        Ok(())
    }
}

/// Waits for all of `futures`, polling them in the order given (each of tokio-postgres's
/// requests is sent at its future's first poll, so they reach the server in that order, all
/// before the first answer is awaited). `join_all` promises no order once it has many.
async fn all_in_order<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(done) => *output = Some(done),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// The store's SQL as PostgreSQL says it: placeholders `$1` for `?1` (or `?`), `ILIKE` for
/// `LIKE` (SQLite's LIKE ignores ASCII case), and a JSON array's elements
/// (`json_array_elements_text`) for SQLite's `json_each` — outside quotes.
fn pg_dialect(sql: &str) -> String {
    let sql = sql
        .replace("json_each(?", "json_array_elements_text(CAST(?")
        .replace(" AS time_text)", " AS timestamptz)");
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql.as_str();
    // Each json_each(?N) became json_array_elements_text(CAST(?N: close the cast.
    while let Some(at) = rest.find("json_array_elements_text(CAST(?") {
        let start = at + "json_array_elements_text(CAST(?".len();
        let digits = rest[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count();
        out.push_str(&rest[..start + digits]);
        out.push_str(" AS json)");
        rest = &rest[start + digits..];
    }
    out.push_str(rest);
    // Between quotes stays as written: split at quotes, every other part is outside them.
    pg_placeholders(&out)
        .split('\'')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            0 => part.replace(" LIKE ", " ILIKE "),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("'")
}

/// `sql` with SQLite's placeholders (`?1`, `?`) as PostgreSQL's (`$1`), outside quotes.
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut in_quote = false;
    let mut next = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                in_quote = !in_quote;
                out.push(ch);
            }
            '?' if !in_quote => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(ch),
        }
    }
    out
}

/// A parameter as PostgreSQL wants it: encoded as the type the server inferred for it.
#[derive(Debug)]
struct PgArg<'a>(ValueRef<'a>);

impl tokio_postgres::types::ToSql for PgArg<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        match self.0 {
            ValueRef::Null => Ok(tokio_postgres::types::IsNull::Yes),
            ValueRef::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::FLOAT4 => (i as f32).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            ValueRef::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => f.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            ValueRef::Text(t) => match *ty {
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => t.parse::<i32>()?.to_sql(ty, out),
                Type::TIMESTAMPTZ => pg_micros(t)?.to_sql(&Type::INT8, out),
                _ => t.to_sql(&Type::TEXT, out),
            },
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// PostgreSQL's `timestamptz` on the wire: microseconds since 2000-01-01 00:00:00 UTC.
fn pg_epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default()
}

/// A time the store passes as text (RFC 3339, as `now_rfc3339` writes them; a bare date or a
/// time without an offset is taken as UTC) as `timestamptz`'s microseconds.
fn pg_micros(text: &str) -> Result<i64, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    match text {
        "-infinity" => return Ok(i64::MIN),
        "infinity" => return Ok(i64::MAX),
        _ => {}
    }
    let utc = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .or_else(|_| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("{text:?} is not a time (RFC 3339 expected)"))
        })?;
    (utc - pg_epoch())
        .num_microseconds()
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// `timestamptz`'s microseconds as the store's text: RFC 3339 in UTC with a `Z`, in seconds
/// unless the time has a fraction (as `now_rfc3339` writes them).
fn pg_time_text(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let t = pg_epoch() + chrono::Duration::microseconds(micros);
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
    }
}

/// A column read whatever its type.
struct PgValue(Value);

impl<'a> tokio_postgres::types::FromSql<'a> for PgValue {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<PgValue, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::TIMESTAMPTZ => Value::Text(pg_time_text(i64::from_sql(&Type::INT8, raw)?)),
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        }))
    }

    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> Result<PgValue, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::{pg_dialect, pg_placeholders};

    #[test]
    fn json_arrays_and_like_in_postgres_words() {
        assert_eq!(
            pg_dialect("SELECT CAST(?1 AS time_text)"),
            "SELECT CAST($1 AS timestamptz)"
        );
        assert_eq!(
            pg_dialect("SELECT value FROM json_each(?1) WHERE a LIKE ?2"),
            "SELECT value FROM json_array_elements_text(CAST($1 AS json)) WHERE a ILIKE $2"
        );
        assert_eq!(
            pg_dialect("SELECT 'a LIKE b' WHERE c LIKE 'd''s LIKE'"),
            "SELECT 'a LIKE b' WHERE c ILIKE 'd''s LIKE'"
        );
    }

    /// Times pass as the store's text both ways: what goes in as RFC 3339 (any offset) comes
    /// back in UTC with a `Z`, to the second unless it had a fraction.
    #[test]
    fn times_in_and_out_of_timestamptz() {
        use super::{pg_micros, pg_time_text};
        let back = |t: &str| pg_time_text(pg_micros(t).unwrap());
        assert_eq!(pg_micros("2000-01-01T00:00:00Z"), Ok(0));
        assert_eq!(pg_micros("2000-01-01T00:00:01+00:00"), Ok(1_000_000));
        assert_eq!(back("2026-12-03T11:50:15Z"), "2026-12-03T11:50:15Z");
        assert_eq!(back("2026-12-03T12:50:15+01:00"), "2026-12-03T11:50:15Z");
        assert_eq!(back("2026-12-03T11:50:15.25Z"), "2026-12-03T11:50:15.250Z");
        assert_eq!(back("1999-12-31T23:59:59Z"), "1999-12-31T23:59:59Z");
        assert_eq!(back("2026-12-03"), "2026-12-03T00:00:00Z");
        assert_eq!(back("2026-12-03T11:50"), "2026-12-03T11:50:00Z");
        assert!(pg_micros("yesterday").unwrap_err().contains("not a time"));
        assert_eq!(back("-infinity"), "-infinity");
        assert_eq!(
            back(crate::store::BEFORE_ANY_TIME),
            crate::store::BEFORE_ANY_TIME
        );
        assert_eq!(pg_time_text(i64::MAX), "infinity");
    }

    #[test]
    fn placeholders_become_postgres_numbers_outside_quotes() {
        assert_eq!(
            pg_placeholders("SELECT ?1, '?', ?2 WHERE a = ?1"),
            "SELECT $1, '?', $2 WHERE a = $1"
        );
        assert_eq!(pg_placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    /// A statement planned per call is never kept (so PostgreSQL never gives it a generic
    /// plan); every other statement is kept once per connection.
    #[test]
    fn statements_planned_per_call_are_not_kept() {
        let Ok(url) = std::env::var("BACKFEED_TEST_DATABASE_URL") else {
            eprintln!("PostgreSQL skipped (BACKFEED_TEST_DATABASE_URL is unset)");
            return;
        };
        let pg = super::PgConn::connect(&url, std::time::Duration::from_secs(10)).unwrap();
        let per_call = format!("{}SELECT CAST(?1 AS BIGINT) + 1", super::PLANNED_PER_CALL);
        let conn = super::Conn::Pg(pg);
        for n in 0..7_i64 {
            let got: i64 = conn.query_row(&per_call, [n], |r| r.get(0)).unwrap();
            assert_eq!(got, n + 1);
        }
        let kept: i64 = conn.query_row("SELECT 2", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 2);
        let super::Conn::Pg(pg) = &conn else {
            unreachable!()
        };
        let statements = pg.statements.borrow();
        assert!(!statements.contains_key(&per_call));
        assert!(statements.contains_key("SELECT 2"));
    }

    /// The test server's URL and a connection to it; `None` (said) where there is none.
    fn test_server() -> Option<(String, super::Conn)> {
        let Ok(url) = std::env::var("BACKFEED_TEST_DATABASE_URL") else {
            eprintln!("PostgreSQL skipped (BACKFEED_TEST_DATABASE_URL is unset)");
            return None;
        };
        let timeout = std::time::Duration::from_secs(10);
        let conn = super::Conn::Pg(super::PgConn::connect(&url, timeout).unwrap());
        Some((url, conn))
    }

    /// One statement of one number, which `sql` names `{n}`.
    fn with_number<'a>(sql: &'a str, n: &'a i64) -> super::Piped<'a> {
        super::Piped::in_runs(
            std::slice::from_ref(n),
            "CAST(? AS BIGINT)",
            |n| sql.replace("{n}", n),
            |n| vec![super::ValueRef::Int(*n)],
        )
    }

    #[test]
    fn a_pipeline_runs_its_statements_in_order_and_gives_each_its_own_rows() {
        use super::{Conn, Piped, ValueRef};
        let mut conns = vec![Conn::Lite(rusqlite::Connection::open_in_memory().unwrap())];
        conns.extend(test_server().map(|(_, conn)| conn));
        for c in conns {
            c.execute_batch("CREATE TEMP TABLE piped (n BIGINT, big TEXT)")
                .unwrap();
            let tx = c.transaction().unwrap();
            // Seven rows: runs of 4, 2 and 1, three statements; then a read of what they
            // wrote, 7 MB (more than the socket holds while the statement after it waits), and
            // a count.
            let ns: Vec<i64> = (1..=7).collect();
            let big = "z".repeat(1 << 20);
            let (mut inserted, mut read, mut counted) = (Vec::new(), Vec::new(), Vec::new());
            tx.pipeline(vec![
                Piped::in_runs(
                    &ns,
                    "(CAST(? AS BIGINT), ?)",
                    |rows| format!("INSERT INTO piped (n, big) VALUES {rows} RETURNING n"),
                    |n| vec![ValueRef::Int(*n), ValueRef::Text(&big)],
                )
                .each(|r| {
                    inserted.push(r.get::<_, i64>(0)?);
                    Ok(())
                }),
                with_number("SELECT n, big FROM piped WHERE n >= {n} ORDER BY n", &1).each(|r| {
                    read.push((r.get::<_, i64>(0)?, r.get::<_, String>(1)?.len()));
                    Ok(())
                }),
                with_number(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM piped WHERE n > {n}",
                    &3,
                )
                .each(|r| {
                    counted.push(r.get::<_, i64>(0)?);
                    Ok(())
                }),
            ])
            .unwrap();
            assert_eq!(inserted, ns);
            assert_eq!(read, ns.iter().map(|&n| (n, 1 << 20)).collect::<Vec<_>>());
            assert_eq!(counted, [4]);
            // The first failure is the one told; in a transaction it undoes the rest.
            let failed = tx
                .pipeline(vec![
                    with_number("INSERT INTO piped (n) VALUES ({n})", &100),
                    with_number("SELECT n FROM no_such_table WHERE n = {n}", &1),
                ])
                .unwrap_err()
                .to_string();
            assert!(
                failed.contains("no_such_table"),
                "{:?}: {failed}",
                c.engine()
            );
            drop(tx);
            let left: i64 = c
                .query_row("SELECT CAST(COUNT(*) AS BIGINT) FROM piped", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(left, 0, "rolled back");
        }
    }

    #[test]
    fn answers_and_statements_larger_than_a_socket_buffer_go_through_and_a_refused_host_is_named() {
        let Some((_, conn)) = test_server() else {
            return;
        };
        let timeout = std::time::Duration::from_secs(10);
        // 8 MB each way: the waiting thread sleeps on the socket for room to write and for
        // more to read, many times over.
        let big = "x".repeat(8 << 20);
        let length: i64 = conn
            .query_row("SELECT CAST(length(?1) AS BIGINT)", [&big], |r| r.get(0))
            .unwrap();
        assert_eq!(length, 8 << 20);
        let echoed: String = conn
            .query_row("SELECT repeat('y', 8388608)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(echoed.len(), 8 << 20);
        let refused = super::PgConn::connect("postgres://postgres@127.0.0.1:9/test", timeout)
            .err()
            .expect("nothing listens on port 9")
            .to_string();
        assert!(
            refused.contains("connecting to PostgreSQL: 127.0.0.1:9"),
            "{refused}"
        );
    }

    /// The session's caps are on every connection, and a URL asking for TLS never falls back
    /// to the clear: against a server without TLS, or with a certificate no root vouches for
    /// (the test server's, at best self-signed), it fails, saying why.
    #[test]
    fn sessions_carry_their_caps_and_tls_is_verified_or_refused() {
        let Some((url, conn)) = test_server() else {
            return;
        };
        let timeout = std::time::Duration::from_secs(10);
        let setting = |name: &str| -> String {
            conn.query_row(&format!("SHOW {name}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(setting("statement_timeout"), "5min");
        assert_eq!(setting("lock_timeout"), "1min");
        assert_eq!(setting("idle_in_transaction_session_timeout"), "5min");
        let joiner = if url.contains('?') { '&' } else { '?' };
        for mode in ["require", "verify-full", "verify-ca"] {
            let strict = format!("{url}{joiner}sslmode={mode}");
            let refused = super::PgConn::connect(&strict, timeout)
                .err()
                .map(|e| e.to_string());
            let refused = refused.unwrap_or_else(|| {
                panic!("sslmode={mode} connected without a verified certificate")
            });
            assert!(refused.contains("connecting to PostgreSQL"), "{refused}");
            assert!(
                !refused.contains("invalid value"),
                "sslmode={mode} is understood: {refused}"
            );
        }
    }
}
