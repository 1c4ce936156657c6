//! Who may use the operator's page: the password check (constant time, and slowed after
//! repeated failures), server-side sessions behind an HttpOnly, SameSite=Strict cookie, and a
//! CSRF token per session that every form carries.
//!
//! Sessions live in the store (only a digest of each cookie's token), so that every process of a
//! fleet knows them — behind a load balancer the next click may reach another process — and a
//! restart does not sign the operator out. The throttle below stays in each process's memory.
//!
//! The throttle is per client address, so that someone guessing cannot lock the operator out:
//! five wrong passwords from one address make that address's next try wait 1 s, then 2, 4 …
//! up to a minute, and the wait stays at its maximum for as long as the guessing goes on (an
//! address is forgiven only after ten quiet minutes, or by its right password). Over all
//! addresses together, a ceiling (more than [`GLOBAL_FAILURES`] wrong passwords a minute: an
//! attacker with many addresses) slows every try by a second — it slows, and never refuses,
//! an address with no failures of its own, so the right password still gets in. It never
//! touches the CLI.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "backfeed_session";
/// The sign-in form's own cookie: its CSRF token before there is a session.
pub const SIGN_IN_COOKIE: &str = "backfeed_signin";
/// How long a session lasts from sign-in, whatever is done with it.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Wrong passwords from one address before each of its tries must wait.
pub const FREE_FAILURES: u32 = 5;
/// How long an address must stay quiet (no wrong password) to be forgiven its failures.
const QUIET_TO_FORGIVE: Duration = Duration::from_secs(10 * 60);
/// The longest wait the throttle imposes on one address.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Wrong passwords a minute over all addresses before every sign-in is slowed.
pub const GLOBAL_FAILURES: usize = 30;
/// The window of the global count.
const GLOBAL_WINDOW: Duration = Duration::from_secs(60);
/// How long every try is held once the global ceiling is passed.
const GLOBAL_SLOWDOWN: Duration = Duration::from_secs(1);
/// Addresses remembered at most; past it, the longest-quiet ones are forgotten.
const MAX_CLIENTS: usize = 10_000;
/// Sessions kept at most; signing in past it drops the oldest.
const MAX_SESSIONS: usize = 64;

/// One address's failures since it was last forgiven, and until when its next try must wait.
struct ClientFailures {
    count: u32,
    last: Instant,
    wait_until: Option<Instant>,
}

/// Failures per address, and every failure of the last minute over all addresses.
#[derive(Default)]
struct Throttle {
    clients: HashMap<IpAddr, ClientFailures>,
    recent: VecDeque<Instant>,
}

impl Throttle {
    /// Forgets what is too old to matter: addresses quiet long enough, global failures out of
    /// the window, and the longest-quiet addresses past [`MAX_CLIENTS`].
    fn forget_old(&mut self, now: Instant) {
        self.clients
            .retain(|_, f| now.duration_since(f.last) < QUIET_TO_FORGIVE);
        if self.clients.len() > MAX_CLIENTS {
            let mut quiet: Vec<(Instant, IpAddr)> =
                self.clients.iter().map(|(ip, f)| (f.last, *ip)).collect();
            quiet.sort();
            for (_, ip) in quiet.iter().take(self.clients.len() - MAX_CLIENTS) {
                self.clients.remove(ip);
            }
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > GLOBAL_WINDOW)
        {
            self.recent.pop_front();
        }
    }
}

/// What a sign-in attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// A new session: its cookie token.
    Welcome(String),
    WrongPassword,
    /// Too many wrong passwords lately: try again after this long.
    Wait(Duration),
    /// The right password, but the store could not keep the session (it is down).
    Unavailable,
}

/// The operator's page's gatekeeper.
pub struct Gate {
    /// The host's operator's password (`[admin] password_env`), when set; sites' owners have
    /// their own (`admin_password_env`), given at each sign-in (sites come and go).
    password_digest: Option<[u8; 32]>,
    /// Where sessions live (by the SHA-256 of their cookie token): the store, so that every
    /// process serving it knows them.
    store: std::sync::Arc<crate::store::Store>,
    throttle: Mutex<Throttle>,
    /// Mark cookies Secure (the public URL is https).
    pub secure_cookies: bool,
}

/// 32 random bytes, hex: a session token or a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    hex::encode(bytes)
}

/// Equal strings, compared in time that depends only on their lengths' digests.
pub fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// A cookie token as the store keeps it.
fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    pub fn new(
        password: &str,
        secure_cookies: bool,
        store: std::sync::Arc<crate::store::Store>,
    ) -> Gate {
        Gate {
            password_digest: Some(Sha256::digest(password.as_bytes()).into()),
            store,
            throttle: Mutex::new(Throttle::default()),
            secure_cookies,
        }
    }

    /// A gate for sites' owners only: no one signs in as the host's operator.
    pub fn for_site_owners(
        secure_cookies: bool,
        store: std::sync::Arc<crate::store::Store>,
    ) -> Gate {
        Gate {
            password_digest: None,
            store,
            throttle: Mutex::new(Throttle::default()),
            secure_cookies,
        }
    }

    /// How long a try from `client` is held before it is checked: a second for everyone while
    /// wrong passwords from all addresses together pass [`GLOBAL_FAILURES`] a minute, nothing
    /// otherwise. A slowdown, not a refusal: the caller waits, then calls [`Gate::sign_in`].
    pub fn slowdown(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut throttle = lock(&self.throttle);
        throttle.forget_old(now);
        (throttle.recent.len() > GLOBAL_FAILURES).then_some(GLOBAL_SLOWDOWN)
    }

    /// Checks `password` from `client`, unless that address must wait; a right one opens a
    /// session and forgives the address.
    pub fn sign_in(&self, client: IpAddr, password: &str) -> SignIn {
        self.sign_in_as(client, password, &[])
    }

    /// [`Gate::sign_in`] where each site's owner may sign in too, with `(site, password)`:
    /// the host's password opens a session for every site, a site's for that site alone.
    /// Every password is compared, whichever matches, so the time taken says nothing.
    pub fn sign_in_as(&self, client: IpAddr, password: &str, sites: &[(String, String)]) -> SignIn {
        let now = Instant::now();
        let mut throttle = lock(&self.throttle);
        throttle.forget_old(now);
        if let Some(until) = throttle.clients.get(&client).and_then(|f| f.wait_until)
            && until > now
        {
            return SignIn::Wait(until - now);
        }
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let host = self
            .password_digest
            .is_some_and(|digest| bool::from(given.ct_eq(&digest)));
        let mut owner_of: Option<&str> = None;
        for (site, site_password) in sites {
            let digest: [u8; 32] = Sha256::digest(site_password.as_bytes()).into();
            if bool::from(given.ct_eq(&digest)) && owner_of.is_none() {
                owner_of = Some(site);
            }
        }
        if host || owner_of.is_some() {
            throttle.clients.remove(&client);
            drop(throttle);
            let site = if host { None } else { owner_of };
            return match self.open_session(site) {
                Some(token) => SignIn::Welcome(token),
                None => SignIn::Unavailable,
            };
        }
        throttle.recent.push_back(now);
        let failures = throttle.clients.entry(client).or_insert(ClientFailures {
            count: 0,
            last: now,
            wait_until: None,
        });
        failures.count += 1;
        failures.last = now;
        if let Some(over) = failures
            .count
            .checked_sub(FREE_FAILURES - 1)
            .filter(|o| *o > 0)
        {
            // The fifth failure makes the next try wait 1 s, the sixth 2 s, then 4, 8 … 60,
            // and 60 s from then on while the failures go on.
            let wait = Duration::from_secs(1u64 << (over - 1).min(6)).min(MAX_WAIT);
            failures.wait_until = Some(now + wait);
        }
        SignIn::WrongPassword
    }

    /// A new session's cookie token; `None` when the store cannot keep it now.
    fn open_session(&self, site: Option<&str>) -> Option<String> {
        let token = random_token();
        self.store
            .open_session(
                &digest(&token),
                &random_token(),
                site,
                SESSION_LIFETIME.as_secs() as i64,
                MAX_SESSIONS,
            )
            .inspect_err(|e| tracing::error!(error = %e, "a session could not be kept"))
            .ok()?;
        Some(token)
    }

    /// The CSRF token of the live session `token` names, if any (none when the store cannot
    /// answer: signed out is the safe side).
    pub fn session_csrf(&self, token: &str) -> Option<String> {
        self.session(token).map(|(csrf, _)| csrf)
    }

    /// The live session `token` names: its CSRF token, and the site it is for (`None`: the
    /// host's operator, every site).
    pub fn session(&self, token: &str) -> Option<(String, Option<String>)> {
        self.store
            .session(&digest(token))
            .inspect_err(|e| tracing::error!(error = %e, "sessions could not be read"))
            .ok()
            .flatten()
    }

    /// Ends the session `token` names.
    pub fn sign_out(&self, token: &str) {
        if let Err(e) = self.store.close_session(&digest(token)) {
            tracing::error!(error = %e, "a session could not be ended");
        }
    }

    /// A `Set-Cookie` value for the admin pages: HttpOnly, SameSite=Strict, Secure behind
    /// https; `None` clears the cookie.
    pub fn cookie(&self, name: &str, value: Option<&str>) -> String {
        let mut cookie = cookie::Cookie::build((name, value.unwrap_or("").to_string()))
            .path("/admin")
            .http_only(true)
            .same_site(cookie::SameSite::Strict)
            .secure(self.secure_cookies);
        cookie = match value {
            Some(_) => cookie.max_age(cookie::time::Duration::seconds(
                SESSION_LIFETIME.as_secs() as i64
            )),
            None => cookie.max_age(cookie::time::Duration::ZERO),
        };
        cookie.build().to_string()
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUESSER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const OPERATOR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    /// Runs `check` on a gate over a store of each engine.
    fn on_each_gate(password: &str, secure: bool, check: impl Fn(&Gate)) {
        for (store, _keep) in crate::store::testing::test_stores("gate") {
            check(&Gate::new(password, secure, std::sync::Arc::new(store)));
        }
    }

    #[test]
    fn five_wrong_passwords_make_that_address_wait_and_no_other() {
        on_each_gate("right", false, |gate| {
            for _ in 0..4 {
                assert_eq!(gate.sign_in(GUESSER, "wrong"), SignIn::WrongPassword);
            }
            assert!(matches!(gate.sign_in(GUESSER, "right"), SignIn::Welcome(_)));
            for _ in 0..5 {
                assert_eq!(gate.sign_in(GUESSER, "wrong"), SignIn::WrongPassword);
            }
            assert!(
                matches!(gate.sign_in(GUESSER, "right"), SignIn::Wait(d) if d <= Duration::from_secs(1))
            );
            assert!(
                matches!(gate.sign_in(OPERATOR, "right"), SignIn::Welcome(_)),
                "another address is not locked out"
            );
        });
    }

    #[test]
    fn the_wait_reaches_its_maximum_and_keeps_it_while_the_guessing_goes_on() {
        on_each_gate("right", false, |gate| {
            let mut waits = Vec::new();
            for _ in 0..12 {
                // Each guess made as soon as the last wait allows (the wait is cleared by hand:
                // no test waits a minute).
                assert_eq!(gate.sign_in(GUESSER, "wrong"), SignIn::WrongPassword);
                let mut throttle = lock(&gate.throttle);
                let f = throttle.clients.get_mut(&GUESSER).unwrap();
                if let Some(until) = f.wait_until.take() {
                    waits.push((until - Instant::now()).as_secs_f64().round() as u64);
                }
            }
            assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        });
    }

    #[test]
    fn many_addresses_guessing_slow_everyone_and_refuse_no_one() {
        on_each_gate("right", false, |gate| {
            assert_eq!(gate.slowdown(), None);
            for n in 0..=GLOBAL_FAILURES {
                let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, (n / 256) as u8, n as u8));
                gate.sign_in(ip, "wrong");
            }
            assert_eq!(gate.slowdown(), Some(GLOBAL_SLOWDOWN));
            assert!(matches!(
                gate.sign_in(OPERATOR, "right"),
                SignIn::Welcome(_)
            ));
        });
    }

    #[test]
    fn a_session_knows_its_csrf_token_until_signed_out() {
        on_each_gate("pw", true, |gate| {
            let SignIn::Welcome(token) = gate.sign_in(OPERATOR, "pw") else {
                panic!("signed in")
            };
            let csrf = gate.session_csrf(&token).expect("live session");
            assert_eq!(csrf.len(), 64);
            assert_ne!(csrf, token);
            assert!(gate.session_csrf("forged").is_none());
            gate.sign_out(&token);
            assert!(gate.session_csrf(&token).is_none());
            let cookie = gate.cookie(SESSION_COOKIE, Some(&token));
            for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
                assert!(cookie.contains(flag), "{cookie}");
            }
        });
    }
}
