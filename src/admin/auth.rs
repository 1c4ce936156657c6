//! Who may use the operator's page: the password check (constant time, and slowed after
//! repeated failures), server-side sessions behind an HttpOnly, SameSite=Strict cookie, and a
//! CSRF token per session that every form carries.
//!
//! Sessions live in memory: a restart signs the operator out, and nothing about a session ever
//! touches the store. The throttle is global, not per client address: there is one password,
//! and an attacker with many addresses must not get many budgets. It slows sign-in, never the
//! CLI, so an operator locked out by someone guessing still has `backfeed moderate`.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "backfeed_session";
/// The sign-in form's own cookie: its CSRF token before there is a session.
pub const SIGN_IN_COOKIE: &str = "backfeed_signin";
/// How long a session lasts from sign-in, whatever is done with it.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Wrong passwords allowed in [`FAILURE_WINDOW`] before each try must wait.
pub const FREE_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The longest wait the throttle imposes.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Sessions kept at most; signing in past it drops the oldest.
const MAX_SESSIONS: usize = 64;

struct Session {
    csrf: String,
    expires: Instant,
}

/// Failures inside the window, and until when the next try must wait.
#[derive(Default)]
struct Throttle {
    failures: VecDeque<Instant>,
    wait_until: Option<Instant>,
}

/// What a sign-in attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// A new session: its cookie token.
    Welcome(String),
    WrongPassword,
    /// Too many wrong passwords lately: try again after this long.
    Wait(Duration),
}

/// The operator's page's gatekeeper.
pub struct Gate {
    password_digest: [u8; 32],
    /// Sessions by the SHA-256 of their cookie token, so the table holds nothing a cookie
    /// could be rebuilt from.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    pub fn new(password: &str, secure_cookies: bool) -> Gate {
        Gate {
            password_digest: Sha256::digest(password.as_bytes()).into(),
            sessions: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
            secure_cookies,
        }
    }

    /// Checks `password`, unless the throttle says wait; a right one opens a session.
    pub fn sign_in(&self, password: &str) -> SignIn {
        let now = Instant::now();
        let mut throttle = lock(&self.throttle);
        if let Some(until) = throttle.wait_until
            && until > now
        {
            return SignIn::Wait(until - now);
        }
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if bool::from(given.ct_eq(&self.password_digest)) {
            throttle.failures.clear();
            throttle.wait_until = None;
            drop(throttle);
            return SignIn::Welcome(self.open_session(now));
        }
        while throttle
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW)
        {
            throttle.failures.pop_front();
        }
        throttle.failures.push_back(now);
        let over = throttle.failures.len().saturating_sub(FREE_FAILURES - 1);
        if over > 0 {
            // The fifth failure makes the next try wait 1 s, the sixth 2 s, then 4, 8 … 60.
            let wait = Duration::from_secs(1u64 << (over - 1).min(6)).min(MAX_WAIT);
            throttle.wait_until = Some(now + wait);
        }
        SignIn::WrongPassword
    }

    fn open_session(&self, now: Instant) -> String {
        let token = random_token();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            Sha256::digest(token.as_bytes()).into(),
            Session {
                csrf: random_token(),
                expires: now + SESSION_LIFETIME,
            },
        );
        token
    }

    /// The CSRF token of the live session `token` names, if any.
    pub fn session_csrf(&self, token: &str) -> Option<String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut sessions = lock(&self.sessions);
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.csrf.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session `token` names.
    pub fn sign_out(&self, token: &str) {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        lock(&self.sessions).remove(&key);
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

    #[test]
    fn five_wrong_passwords_make_the_next_try_wait_even_with_the_right_one() {
        let gate = Gate::new("right", false);
        for _ in 0..4 {
            assert_eq!(gate.sign_in("wrong"), SignIn::WrongPassword);
        }
        assert!(matches!(gate.sign_in("right"), SignIn::Welcome(_)));
        for _ in 0..5 {
            assert_eq!(gate.sign_in("wrong"), SignIn::WrongPassword);
        }
        assert!(matches!(gate.sign_in("right"), SignIn::Wait(d) if d <= Duration::from_secs(1)));
    }

    #[test]
    fn a_session_knows_its_csrf_token_until_signed_out() {
        let gate = Gate::new("pw", true);
        let SignIn::Welcome(token) = gate.sign_in("pw") else {
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
    }
}
