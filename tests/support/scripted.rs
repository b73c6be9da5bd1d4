//! A scripted `Authorizer` for tests: counts its calls, issues numbered tokens with a
//! chosen lifetime, fails on cue, and can block inside `refresh` until a test lets it go.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use en_core_auth::{Authorizer, ClientInfo, Error, ErrorKind, Token};

/// Told of each token issued, with its lifetime.
pub type IssueHook = Box<dyn Fn(&str, Option<Duration>) + Send>;

#[derive(Default)]
pub struct Script {
    pub authorize_calls: AtomicUsize,
    pub refresh_calls: AtomicUsize,
    pub issued: AtomicUsize,
    /// Lifetimes of the next tokens, in order; afterwards `default_lifetime`.
    pub lifetimes: Mutex<VecDeque<Option<Duration>>>,
    pub default_lifetime: Mutex<Option<Duration>>,
    pub refresh_failures: Mutex<VecDeque<ErrorKind>>,
    pub authorize_failures: Mutex<VecDeque<ErrorKind>>,
    /// When set, `refresh` waits on it twice: once to say it started, once to finish.
    pub refresh_gate: Mutex<Option<Arc<Barrier>>>,
    /// Called with each token issued, so a test server can learn which tokens are valid.
    pub on_issue: Mutex<Option<IssueHook>>,
}

impl Script {
    pub fn new(lifetime: Option<Duration>) -> Arc<Script> {
        let script = Script::default();
        *script.default_lifetime.lock().unwrap() = lifetime;
        Arc::new(script)
    }
    /// The next `refresh` fails with `kind`.
    pub fn fail_next_refresh(&self, kind: ErrorKind) {
        self.refresh_failures.lock().unwrap().push_back(kind);
    }
    /// The next `authorize` fails with `kind`.
    pub fn fail_next_authorize(&self, kind: ErrorKind) {
        self.authorize_failures.lock().unwrap().push_back(kind);
    }
    pub fn authorizes(&self) -> usize {
        self.authorize_calls.load(Ordering::SeqCst)
    }
    pub fn refreshes(&self) -> usize {
        self.refresh_calls.load(Ordering::SeqCst)
    }
    pub fn token_calls(&self) -> usize {
        self.authorizes() + self.refreshes()
    }
    fn issue(&self) -> Token {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = self
            .lifetimes
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(*self.default_lifetime.lock().unwrap());
        let value = format!("token-{n}");
        if let Some(hook) = &*self.on_issue.lock().unwrap() {
            hook(&value, lifetime);
        }
        let token = Token::new(value).with_refresh_token(format!("refresh-{n}"));
        match lifetime {
            Some(lifetime) => token.with_expires_in(lifetime),
            None => token,
        }
    }
}

pub struct Scripted {
    pub client: ClientInfo,
    pub script: Arc<Script>,
}

impl Scripted {
    pub fn new(client: ClientInfo, script: &Arc<Script>) -> Scripted {
        Scripted {
            client,
            script: Arc::clone(script),
        }
    }
}

impl Authorizer for Scripted {
    fn client_info(&self) -> &ClientInfo {
        &self.client
    }

    fn authorize(&mut self) -> Result<Token, Error> {
        self.script.authorize_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = self.script.authorize_failures.lock().unwrap().pop_front() {
            return Err(Error::new(kind, "scripted authorize failure"));
        }
        Ok(self.script.issue())
    }

    fn refresh(&mut self, _token: &Token) -> Result<Token, Error> {
        self.script.refresh_calls.fetch_add(1, Ordering::SeqCst);
        let gate = self.script.refresh_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.wait();
            gate.wait();
        }
        if let Some(kind) = self.script.refresh_failures.lock().unwrap().pop_front() {
            return Err(Error::new(kind, "scripted refresh failure"));
        }
        Ok(self.script.issue())
    }
}
