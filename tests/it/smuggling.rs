//! Request smuggling: the classic vectors (CL.TE, TE.CL, TE.TE with an
//! obfuscated Transfer-Encoding, duplicate and malformed Content-Length, bare
//! LF, obs-fold, NUL and CR in values, bad chunk sizes, chunk extensions,
//! requests pipelined behind an attempt) sent as raw bytes to the real builtin
//! proxy in front of a strict app that records exactly what it read
//! (`support::proxy::Recorder`).
//!
//! Each vector runs twice: as the first request of a connection (the lean
//! path reads it, and hands it to hyper when it does not handle it) and on a
//! connection hyper already serves (a first request with a Connection token
//! the lean path does not handle moves it there). Every vector is followed on
//! the same connection by a probe (`GET /probe` with `Connection: close`): a
//! desync shows up as the app seeing the probe altered, or seeing a request
//! nobody sent. What is asserted, for each vector and path:
//!
//! - the app saw one of the outcomes listed for the vector: exactly the
//!   request(s) sent, with the right bodies, then the probe; or nothing (a
//!   refusal); never a request the proxy framed differently, never anything
//!   a strict server would not frame one way only;
//! - the client got one 2xx per request the app saw, in order, each naming
//!   that request, and at most one more response, which is not a 2xx (the
//!   refusal), before the connection closed.
//!
//! Refusals are asserted as "not 2xx", not as an exact status: a malformed
//! chunked body is answered 502 today and is becoming a 400 (issue 15), and
//! the app may then have seen the request cut short (hyper's path streams a
//! body to the app as it reads it), listed as `Seen::Cut`. nginx 1.22 answers
//! 400 to every refused vector here and closes the connection.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::proxy::*;

/// What follows every vector on its connection.
const PROBE: &[u8] = b"GET /probe HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";

/// Moves a connection to hyper's path: a Connection token the lean path does
/// not handle (`lean/request.rs`).
const TO_HYPER: &[u8] =
    b"GET /to-hyper HTTP/1.1\r\nHost: app.test\r\nConnection: x-via-hyper\r\n\r\n";

/// One vector: its bytes and the app logs that are acceptable.
struct Vector {
    name: String,
    raw: Vec<u8>,
    /// Each is a whole acceptable app log (the probe included when it must
    /// be served).
    allowed: Vec<Vec<Seen>>,
}

fn post(target: &str, body: &[u8]) -> Seen {
    Seen::request("POST", target, body)
}

fn probe() -> Seen {
    Seen::request("GET", "/probe", b"")
}

fn cut(target: &str) -> Seen {
    Seen::Cut {
        method: "POST".into(),
        target: target.into(),
    }
}

/// A vector the proxy must refuse: the app sees nothing.
fn refused(name: &str, raw: &[u8]) -> Vector {
    Vector {
        name: name.to_string(),
        raw: raw.to_vec(),
        allowed: vec![vec![]],
    }
}

/// A vector that is valid HTTP/1.1: forwarded as `seen`, then the probe.
fn served(name: &str, raw: &[u8], seen: Vec<Seen>) -> Vector {
    let mut log = seen;
    log.push(probe());
    Vector {
        name: name.to_string(),
        raw: raw.to_vec(),
        allowed: vec![log],
    }
}

/// A vector a proxy may serve (as `seen`, then the probe) or refuse.
fn served_or_refused(name: &str, raw: &[u8], seen: Vec<Seen>) -> Vector {
    let mut vector = served(name, raw, seen);
    vector.allowed.push(vec![]);
    vector
}

/// Both Transfer-Encoding and Content-Length (RFC 9112 6.1): refused, or
/// served by Transfer-Encoding with the connection closed after it (the
/// probe is not served).
fn te_and_cl(name: &str, raw: &[u8], body: &[u8]) -> Vector {
    Vector {
        name: name.to_string(),
        raw: raw.to_vec(),
        allowed: vec![vec![], vec![post("/a", body)]],
    }
}

/// A malformed chunked body: refused; hyper's path may have streamed the
/// start of it to the app (`Seen::Cut`), never a whole request.
fn bad_chunked(name: &str, raw: &[u8]) -> Vector {
    Vector {
        name: name.to_string(),
        raw: raw.to_vec(),
        allowed: vec![vec![], vec![cut("/a")]],
    }
}

/// A chunked body of "hello" a strict reader refuses and a lenient one
/// serves: either, or the start of it streamed to the app and cut.
fn lenient_chunked(name: &str, raw: &[u8]) -> Vector {
    let mut vector = bad_chunked(name, raw);
    vector.allowed.push(vec![post("/a", b"hello"), probe()]);
    vector
}

/// A response as the client read it.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

/// Splits what the proxy sent into responses (Content-Length or chunked
/// bodies; anything else runs to the end).
fn replies(mut bytes: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut slots);
        let len = match res.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            other => return Err(format!("not a response: {other:?} in {bytes:?}")),
        };
        let status = res.code.unwrap_or(0);
        let value = |name: &str| {
            res.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let (length, chunked) = (value("content-length"), value("transfer-encoding"));
        bytes = &bytes[len..];
        let body = if let Some(length) = length {
            let n: usize = length.trim().parse().map_err(|_| length.clone())?;
            if bytes.len() < n {
                return Err(format!("a body cut short: {bytes:?}"));
            }
            let (body, rest) = bytes.split_at(n);
            bytes = rest;
            body.to_vec()
        } else if chunked.is_some() {
            let end = bytes
                .windows(5)
                .position(|w| w == b"0\r\n\r\n")
                .ok_or("a chunked body cut short")?;
            let body = bytes[..end].to_vec();
            bytes = &bytes[end + 5..];
            body
        } else {
            std::mem::take(&mut bytes).to_vec()
        };
        out.push(Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(out)
}

/// Which path reads the vector.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// The first request of a fresh connection.
    Lean,
    /// A connection hyper already serves.
    Hyper,
}

/// Sends `vector` then the probe on one connection, and reads until the
/// proxy closes it.
async fn send(addr: SocketAddr, path: Path, vector: &Vector) -> Result<Vec<Reply>, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    if let Path::Hyper = path {
        stream
            .write_all(TO_HYPER)
            .await
            .map_err(|e| e.to_string())?;
        // Its answer: "seen GET /to-hyper 0".
        let read = async {
            while replies(&got).map_or(true, |r| r.is_empty()) {
                let mut more = [0u8; 4096];
                match stream.read(&mut more).await {
                    Ok(0) | Err(_) => return Err("closed before the hand-over answer".to_string()),
                    Ok(n) => got.extend_from_slice(&more[..n]),
                }
            }
            Ok(())
        };
        tokio::time::timeout(EXCHANGE, read)
            .await
            .map_err(|_| "no hand-over answer".to_string())??;
        got.clear();
    }
    let mut raw = vector.raw.clone();
    raw.extend_from_slice(PROBE);
    // A proxy that refuses may close before reading it all: that is fine.
    let _ = stream.write_all(&raw).await;
    let read = async {
        let mut more = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut more).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&more[..n]),
            }
        }
    };
    tokio::time::timeout(EXCHANGE, read)
        .await
        .map_err(|_| format!("the proxy did not close the connection; read {got:?}"))?;
    replies(&got)
}

/// Checks one outcome; the description of what is wrong, if anything.
fn judge(vector: &Vector, seen: &[Seen], got: &[Reply]) -> Option<String> {
    if !vector.allowed.iter().any(|log| log == seen) {
        return Some(format!("the app saw {seen:?}"));
    }
    let whole: Vec<String> = seen.iter().filter_map(Seen::answer).collect();
    let answered = got.len().min(whole.len());
    for (reply, expected) in got.iter().zip(&whole) {
        if reply.status != 200 || reply.body != *expected {
            return Some(format!(
                "the client got {} {:?} for {expected:?}",
                reply.status, reply.body
            ));
        }
    }
    if answered < whole.len() {
        return Some(format!(
            "only {answered} of {} requests answered",
            whole.len()
        ));
    }
    match &got[answered..] {
        [] => None,
        [refusal] if !(200..300).contains(&refusal.status) => None,
        more => Some(format!("extra responses: {more:?}")),
    }
}

/// Runs every vector on both paths against a fresh app each, and fails
/// naming every vector whose outcome was not allowed.
async fn run(vectors: Vec<Vector>) {
    let h = Harness::start().await;
    let mut failures = Vec::new();
    for vector in &vectors {
        for path in [Path::Lean, Path::Hyper] {
            let app = Recorder::start().await;
            h.route_to(app.addr).await;
            let handed = h.proxy.connections_handed_to_hyper();
            let got = send(h.addr(), path, vector).await;
            let mut seen = app.seen();
            if let Path::Hyper = path {
                assert!(h.proxy.connections_handed_to_hyper() > handed);
                if seen.first() == Some(&Seen::request("GET", "/to-hyper", b"")) {
                    seen.remove(0);
                } else {
                    failures.push(format!(
                        "{} ({path:?}): no hand-over: {seen:?}",
                        vector.name
                    ));
                    continue;
                }
            }
            let wrong = match got {
                Ok(got) => judge(vector, &seen, &got),
                Err(error) => Some(format!("{error}; the app saw {seen:?}")),
            };
            if let Some(wrong) = wrong {
                failures.push(format!("{} ({path:?}): {wrong}", vector.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs (each vector on each path) went wrong:\n{}",
        failures.len(),
        vectors.len() * 2,
        failures.join("\n")
    );
}

/// A POST to /a with these header lines (CRLF-terminated each) and body bytes.
fn raw(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST /a HTTP/1.1\r\nHost: app.test\r\n{headers}\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_encoding_beside_content_length() {
    let smuggled = b"GPOST /admin HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nx=1";
    let mut in_chunk = format!("{:x}\r\n", smuggled.len()).into_bytes();
    in_chunk.extend_from_slice(smuggled);
    in_chunk.extend_from_slice(b"\r\n0\r\n\r\n");
    run(vec![
        te_and_cl(
            "CL.TE: Content-Length covers a prefix of the next request",
            &raw(
                "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\nG",
            ),
            b"",
        ),
        te_and_cl(
            "TE.CL: Content-Length ends inside the chunked body",
            &raw(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                &in_chunk,
            ),
            smuggled,
        ),
        te_and_cl(
            "CL.TE with Content-Length first and a whole request after the last chunk",
            &raw(
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
            ),
            b"",
        ),
        te_and_cl(
            "TE.CL with Content-Length: 0",
            &raw(
                "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                b"5\r\nhello\r\n0\r\n\r\n",
            ),
            b"hello",
        ),
        refused(
            "Transfer-Encoding on HTTP/1.0",
            b"POST /a HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obfuscated_transfer_encoding() {
    let chunked = b"5\r\nhello\r\n0\r\n\r\n";
    let cl_5 = "Content-Length: 5\r\n";
    run(vec![
        refused(
            "TE: xchunked",
            &raw(&format!("Transfer-Encoding: xchunked\r\n{cl_5}"), b"hello"),
        ),
        refused(
            "TE with a space before the colon",
            &raw(&format!("Transfer-Encoding : chunked\r\n{cl_5}"), b"hello"),
        ),
        refused(
            "TE with a tab before the colon",
            &raw(&format!("Transfer-Encoding\t: chunked\r\n{cl_5}"), b"hello"),
        ),
        served_or_refused(
            "TE with a tab as whitespace",
            &raw("Transfer-Encoding:\tchunked\r\n", chunked),
            vec![post("/a", b"hello")],
        ),
        refused(
            "TE as an obs-fold continuation line",
            &raw(
                &format!("X-A: 1\r\n Transfer-Encoding: chunked\r\n{cl_5}"),
                b"hello",
            ),
        ),
        refused(
            "TE with its value folded onto the next line",
            &raw(
                &format!("Transfer-Encoding:\r\n chunked\r\n{cl_5}"),
                b"hello",
            ),
        ),
        refused(
            "TE: chunked then TE: x (last coding not chunked)",
            &raw(
                &format!("Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n{cl_5}"),
                b"hello",
            ),
        ),
        refused(
            "TE: chunked, identity",
            &raw(
                &format!("Transfer-Encoding: chunked, identity\r\n{cl_5}"),
                b"hello",
            ),
        ),
        served_or_refused(
            "TE: identity, chunked",
            &raw("Transfer-Encoding: identity, chunked\r\n", chunked),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "TE: x then TE: chunked",
            &raw(
                "Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n",
                chunked,
            ),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "TE: chunked twice (applied once, or refused)",
            &raw(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                chunked,
            ),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "TE: CHUNKED in capitals",
            &raw("Transfer-Encoding: CHUNKED\r\n", chunked),
            vec![post("/a", b"hello")],
        ),
        refused(
            "TE: \"chunked\" quoted",
            &raw(
                &format!("Transfer-Encoding: \"chunked\"\r\n{cl_5}"),
                b"hello",
            ),
        ),
        refused(
            "TE with a vertical tab before chunked",
            &raw(
                &format!("Transfer-Encoding: \x0bchunked\r\n{cl_5}"),
                b"hello",
            ),
        ),
        served(
            "Transfer_Encoding (underscore) is not Transfer-Encoding",
            &raw(&format!("Transfer_Encoding: chunked\r\n{cl_5}"), b"hello"),
            vec![post("/a", b"hello")],
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_malformed_content_length() {
    let hello = b"helloGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
    // A sign, a hex or decimal point, a space inside, more than 64 bits.
    let malformed = ["+5", "-1", "0x5", "5.0", "5 5", "99999999999999999999999"];
    let mut vectors: Vec<Vector> = malformed
        .iter()
        .map(|value| {
            let line = format!("Content-Length: {value}\r\n");
            refused(&format!("Content-Length: {value}"), &raw(&line, b"hello"))
        })
        .collect();
    vectors.extend([
        refused(
            "two different Content-Length lines",
            &raw("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        ),
        refused(
            "Content-Length: 5, 6",
            &raw("Content-Length: 5, 6\r\n", b"hello!"),
        ),
        served_or_refused(
            "two equal Content-Length lines",
            &raw("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "Content-Length: 5, 5",
            &raw("Content-Length: 5, 5\r\n", b"hello"),
            vec![post("/a", b"hello")],
        ),
        refused(
            "Content-Length with a space before the colon",
            &raw("Content-Length : 5\r\n", b"hello"),
        ),
        served(
            "Content-Length with spaces around the value",
            &raw("Content-Length:   5  \r\n", b"hello"),
            vec![post("/a", b"hello")],
        ),
        served(
            "Content-Length: 005",
            &raw("Content-Length: 005\r\n", b"hello"),
            vec![post("/a", b"hello")],
        ),
        served(
            "a request pipelined right after a Content-Length body",
            &raw("Content-Length: 5\r\n", hello),
            vec![post("/a", b"hello"), Seen::request("GET", "/smuggled", b"")],
        ),
        served(
            "a request inside a Content-Length body stays body",
            &raw(
                &format!("Content-Length: {}\r\n", hello.len() - 5),
                &hello[5..],
            ),
            vec![post("/a", &hello[5..])],
        ),
    ]);
    run(vectors).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_endings_and_control_bytes() {
    run(vec![
        served_or_refused(
            "bare LF line endings throughout",
            b"POST /a HTTP/1.1\nHost: app.test\nContent-Length: 5\n\nhello",
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "a bare LF before Content-Length",
            b"POST /a HTTP/1.1\r\nHost: app.test\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello",
            vec![post("/a", b"hello")],
        ),
        refused(
            "a bare CR before Content-Length",
            &raw("X-A: 1\rContent-Length: 5\r\n", b"hello"),
        ),
        refused(
            "a NUL in a header value",
            &raw("X-A: 1\0\r\nContent-Length: 5\r\n", b"hello"),
        ),
        refused(
            "an obs-fold continuation line",
            &raw("X-A: 1\r\n  2\r\nContent-Length: 5\r\n", b"hello"),
        ),
        refused(
            "a space in the request target",
            b"POST /a /b HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello",
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_sizes_and_extensions() {
    let te = "Transfer-Encoding: chunked\r\n";
    run(vec![
        bad_chunked(
            "a chunk size beyond 64 bits",
            &raw(te, b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
        ),
        bad_chunked(
            "a chunk size with 0x",
            &raw(te, b"0x5\r\nhello\r\n0\r\n\r\n"),
        ),
        bad_chunked(
            "a negative chunk size",
            &raw(te, b"-5\r\nhello\r\n0\r\n\r\n"),
        ),
        bad_chunked(
            "chunk data longer than its size",
            &raw(te, b"3\r\nhello\r\n0\r\n\r\n"),
        ),
        bad_chunked("not a chunk size", &raw(te, b"zz\r\nhello\r\n0\r\n\r\n")),
        served_or_refused(
            "a chunk size with leading zeros",
            &raw(te, b"0000000000000005\r\nhello\r\n0\r\n\r\n"),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "chunk extensions",
            &raw(
                te,
                b"5;name=value;quoted=\"a b\"\r\nhello\r\n0;last\r\n\r\n",
            ),
            vec![post("/a", b"hello")],
        ),
        served_or_refused(
            "trailer fields after the last chunk",
            &raw(te, b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"),
            vec![post("/a", b"hello")],
        ),
        lenient_chunked(
            "a chunk line ended by a bare LF",
            &raw(te, b"5\nhello\r\n0\r\n\r\n"),
        ),
        lenient_chunked(
            "a space after the chunk size",
            &raw(te, b"5 \r\nhello\r\n0\r\n\r\n"),
        ),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pipelined_behind_an_attempt() {
    let next = b"GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let after = |attempt: &[u8]| [attempt, next.as_slice()].concat();
    let chunked = raw("Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n");
    run(vec![
        te_and_cl(
            "a request pipelined behind TE and CL",
            &after(&raw(
                "Transfer-Encoding: chunked\r\nContent-Length: 30\r\n",
                b"0\r\n\r\n",
            )),
            b"",
        ),
        refused(
            "a request pipelined behind a Content-Length conflict",
            &after(&raw(
                "Content-Length: 5\r\nContent-Length: 50\r\n",
                b"hello",
            )),
        ),
        served_or_refused(
            "a request pipelined behind a chunked body",
            &after(&chunked),
            vec![post("/a", b"hello"), Seen::request("GET", "/next", b"")],
        ),
        served(
            "a GET with a body that looks like a request",
            &[
                format!(
                    "GET /a HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n",
                    next.len()
                )
                .as_bytes(),
                next,
            ]
            .concat(),
            vec![Seen::request("GET", "/a", next)],
        ),
    ])
    .await;
}

/// The suite itself can fail: an app that reads a smuggled request is caught.
#[test]
fn a_smuggled_request_is_caught() {
    let vector = refused("x", b"");
    let smuggled = [Seen::request("GET", "/admin", b"")];
    let answer = Reply {
        status: 200,
        body: "seen GET /admin 0".into(),
    };
    assert!(judge(&vector, &smuggled, &[answer]).is_some());
    let vector = served("y", b"", vec![post("/a", b"hello")]);
    let two = [post("/a", b"hello"), probe()];
    let only_one = [Reply {
        status: 200,
        body: "seen POST /a 5".into(),
    }];
    assert!(judge(&vector, &two, &only_one).is_some());
}
