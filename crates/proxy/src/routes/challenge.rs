//! ACME HTTP-01 answers (RFC 8555 8.3): the tokens the owner is validating
//! now and their key authorizations, answered on the production listener
//! whatever the Host, before routing. A request pays one prefix compare of
//! its target (`is_challenge_get` on the lean path, `is_acme_challenge` on
//! hyper's) unless it asks for a challenge; an unknown token is routed as
//! before (forwarded to the app that names the Host).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::ListenerKind;
use super::https::ACME_CHALLENGE;
use crate::Proxy;

/// What a lean-path upstream head starts with when it asks for a challenge
/// (validation servers use GET; anything else is routed as before).
pub(crate) const CHALLENGE_GET: &[u8] = b"GET /.well-known/acme-challenge/";

/// Token → key authorization. Locked by `set_challenge` and by requests
/// that asked for a challenge path only, never on the hot path.
#[derive(Debug, Default)]
pub(crate) struct Challenges {
    answers: Mutex<HashMap<Box<str>, Bytes>>,
}

impl Challenges {
    /// The key authorization for `path` (a request's path, with or without
    /// its query) when it names a token being validated.
    fn answer(&self, path: &[u8]) -> Option<Bytes> {
        let token = path.strip_prefix(ACME_CHALLENGE)?;
        let token = token.split(|&b| b == b'?').next().unwrap_or(token);
        let token = std::str::from_utf8(token).ok()?;
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.get(token).cloned()
    }
}

impl Proxy {
    /// ACME HTTP-01: from now on `GET /.well-known/acme-challenge/{token}` on
    /// the production listener gets 200 with `key_authorization` as its
    /// text/plain body, whatever the Host (`Some`); or it is routed as any
    /// other request again (`None`).
    pub fn set_challenge(&self, token: &str, key_authorization: Option<&str>) {
        let mut answers = self
            .challenges
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match key_authorization {
            Some(answer) => {
                answers.insert(token.into(), Bytes::copy_from_slice(answer.as_bytes()));
            }
            None => {
                answers.remove(token);
            }
        }
    }

    /// The answer to a request for `path` on `listener`, when it is a
    /// challenge being validated. Callers compare the prefix first.
    pub(crate) fn challenge_answer(&self, listener: &ListenerKind, path: &[u8]) -> Option<Bytes> {
        match listener {
            ListenerKind::Production => self.challenges.answer(path),
            ListenerKind::Preview(_) | ListenerKind::Tls => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_tokens_are_answered_with_or_without_a_query() {
        let challenges = Challenges::default();
        challenges
            .answers
            .lock()
            .unwrap()
            .insert("tok".into(), Bytes::from_static(b"tok.thumb"));
        let answer = |path: &str| challenges.answer(path.as_bytes());
        assert_eq!(
            answer("/.well-known/acme-challenge/tok").unwrap(),
            "tok.thumb"
        );
        assert_eq!(
            answer("/.well-known/acme-challenge/tok?x=1").unwrap(),
            "tok.thumb"
        );
        assert_eq!(answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(answer("/.well-known/acme-challenge/tok/x"), None);
        assert_eq!(answer("/tok"), None);
        assert!(CHALLENGE_GET.ends_with(ACME_CHALLENGE));
    }
}
