//! A PostgreSQL connection's socket, read and written only by the thread that waits for an
//! answer ([`super::db::PgConn`]), and the loop that waits.
//!
//! Why not a tokio socket on a runtime: the store's calls are synchronous, so a thread always
//! waits for each answer anyway. With a runtime, the answer woke the runtime's reactor thread,
//! which woke the waiting thread: two thread switches a statement, and on two cores the reactor
//! alone took a tenth of the process's CPU in a run of 10,000 verifications (`perf`). Here the
//! socket is non-blocking; a read or write that would block answers "not yet" without arranging
//! a wake-up, and the waiting thread sleeps in `poll(2)` on the socket itself — the kernel wakes
//! it when the answer arrives. Level-triggered: a thread never sleeps while its socket has
//! something to read.

use super::{StoreError, StoreResult};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// The longest one sleep in `poll(2)` lasts before the waiting thread looks again (it finds the
/// same nothing: this only bounds a sleep, never an answer's wait).
const POLL_SLICE_MS: libc::c_int = 1_000;

/// The open stream: TCP, or a Unix socket (a `host` that is a directory, as libpq reads it).
enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

/// A connected, non-blocking socket for tokio-postgres to read and write (see the module).
pub(super) struct WaitedSocket {
    stream: Stream,
    readiness: Readiness,
}

/// What the waiting thread needs of a socket it gave away: its descriptor, and whether a write
/// is waiting for room.
#[derive(Clone)]
pub(super) struct Readiness {
    fd: RawFd,
    write_blocked: Arc<AtomicBool>,
}

impl WaitedSocket {
    /// Connects to the first of `config`'s hosts that answers within `timeout`; with the host's
    /// name (for TLS).
    pub(super) fn connect(
        config: &tokio_postgres::Config,
        timeout: std::time::Duration,
    ) -> StoreResult<(WaitedSocket, String)> {
        use tokio_postgres::config::Host;
        let ports = config.get_ports();
        let addresses = config.get_hostaddrs();
        let mut last_error = String::from("the database URL names no host");
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let opened = match host {
                Host::Tcp(name) => {
                    let by_address = addresses.get(i).map(|ip| (*ip, port).into());
                    tcp_connect(name, port, by_address, timeout)
                        .and_then(|s| keep_alive(&s, config).map(|_| s))
                        .map(|s| (Stream::Tcp(s), name.clone()))
                }
                Host::Unix(dir) => {
                    std::os::unix::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                        .map(|s| (Stream::Unix(s), String::new()))
                        .map_err(|e| format!("{}: {e}", dir.display()))
                }
            };
            match opened {
                Ok((stream, name)) => return WaitedSocket::new(stream).map(|s| (s, name)),
                Err(e) => last_error = e,
            }
        }
        Err(StoreError::Database(
            format!("connecting to PostgreSQL: {last_error}").into(),
        ))
    }

    fn new(stream: Stream) -> StoreResult<WaitedSocket> {
        let set_up = match &stream {
            Stream::Tcp(s) => s.set_nodelay(true).and_then(|_| s.set_nonblocking(true)),
            Stream::Unix(s) => s.set_nonblocking(true),
        };
        set_up.map_err(|e| {
            StoreError::Database(format!("connecting to PostgreSQL: socket: {e}").into())
        })?;
        let fd = match &stream {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        };
        Ok(WaitedSocket {
            stream,
            readiness: Readiness {
                fd,
                write_blocked: Arc::new(AtomicBool::new(false)),
            },
        })
    }

    /// What the waiting thread sleeps on, once the socket is handed to the client.
    pub(super) fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// One read or write on the stream, again when a signal interrupted it; `Pending` when it
    /// would block (nothing is arranged to wake anyone: see the module).
    fn io<T>(
        &mut self,
        mut op: impl FnMut(&mut dyn ReadWrite) -> std::io::Result<T>,
    ) -> Poll<std::io::Result<T>> {
        let stream: &mut dyn ReadWrite = match &mut self.stream {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        };
        loop {
            match op(stream) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Poll::Pending,
                done => return Poll::Ready(done),
            }
        }
    }
}

fn tcp_connect(
    name: &str,
    port: u16,
    by_address: Option<std::net::SocketAddr>,
    timeout: std::time::Duration,
) -> Result<std::net::TcpStream, String> {
    use std::net::ToSocketAddrs;
    let candidates: Vec<std::net::SocketAddr> = match by_address {
        Some(address) => vec![address],
        None => (name, port)
            .to_socket_addrs()
            .map_err(|e| format!("{name}:{port}: {e}"))?
            .collect(),
    };
    let mut last_error = format!("{name}:{port}: no address");
    for address in candidates {
        match std::net::TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = format!("{name}:{port} ({address}): {e}"),
        }
    }
    Err(last_error)
}

/// The URL's TCP keepalive and user timeout, as tokio-postgres's own sockets take them
/// (keepalives on, first probe after two hours idle, unless the URL says otherwise): a server
/// gone without a word is noticed on an idle connection too.
fn keep_alive(stream: &std::net::TcpStream, config: &tokio_postgres::Config) -> Result<(), String> {
    let socket = socket2::SockRef::from(stream);
    let set = || -> std::io::Result<()> {
        if config.get_keepalives() {
            let mut keepalive =
                socket2::TcpKeepalive::new().with_time(config.get_keepalives_idle());
            if let Some(interval) = config.get_keepalives_interval() {
                keepalive = keepalive.with_interval(interval);
            }
            if let Some(retries) = config.get_keepalives_retries() {
                keepalive = keepalive.with_retries(retries);
            }
            socket.set_tcp_keepalive(&keepalive)?;
        }
        if let Some(timeout) = config.get_tcp_user_timeout() {
            socket.set_tcp_user_timeout(Some(*timeout))?;
        }
        Ok(())
    };
    set().map_err(|e| format!("keepalive: {e}"))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl tokio::io::AsyncRead for WaitedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let read = this.io(|s| s.read(buf.initialize_unfilled()));
        read.map_ok(|n| buf.advance(n))
    }
}

impl tokio::io::AsyncWrite for WaitedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = this.io(|s| s.write(bytes));
        if written.is_pending() {
            this.readiness.write_blocked.store(true, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let shut = match &self.stream {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
        Poll::Ready(shut)
    }
}

impl Readiness {
    /// Sleeps until the socket can be read (or written, when a write waits for room), or for
    /// at most [`POLL_SLICE_MS`].
    pub(super) fn sleep(&self) {
        let mut events = libc::POLLIN;
        if self.write_blocked.swap(false, Ordering::Relaxed) {
            events |= libc::POLLOUT;
        }
        let mut fd = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the call's duration; the descriptor is open while its
        // connection lives, and only a live connection's waiter sleeps on it.
        unsafe { libc::poll(&mut fd, 1, POLL_SLICE_MS) };
    }
}

/// Polls `step` until it is ready, sleeping on `readiness` between tries: the waiting thread
/// drives its connection's I/O itself (see the module). Nothing wakes the context it is given.
pub(super) fn wait_on<T>(
    readiness: &Readiness,
    mut step: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> T {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = step(&mut cx) {
            return out;
        }
        readiness.sleep();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_tcp_connection_keeps_alive_as_its_url_says() {
        let Ok(url) = std::env::var("BACKFEED_TEST_DATABASE_URL") else {
            eprintln!("PostgreSQL skipped (BACKFEED_TEST_DATABASE_URL is unset)");
            return;
        };
        let joiner = if url.contains('?') { '&' } else { '?' };
        let config: tokio_postgres::Config =
            format!("{url}{joiner}keepalives_idle=77").parse().unwrap();
        let (socket, _) = super::WaitedSocket::connect(&config, Duration::from_secs(10)).unwrap();
        let super::Stream::Tcp(tcp) = &socket.stream else {
            panic!("a postgres:// URL with a host name connects over TCP");
        };
        let tcp = socket2::SockRef::from(tcp);
        assert!(tcp.keepalive().unwrap());
        assert_eq!(tcp.tcp_keepalive_time().unwrap(), Duration::from_secs(77));
    }
}
