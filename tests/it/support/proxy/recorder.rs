//! A raw HTTP/1.1 app that records every request exactly as it framed it
//! (method, target, body), for the smuggling suite: strict where framing is
//! concerned (CRLF lines, one `Transfer-Encoding: chunked` or a Content-Length,
//! never both), so that anything ambiguous the proxy lets through shows up as
//! a `Seen::Bad`, and a request cut short as `Seen::Cut`. Each request gets a
//! 200 whose body names it (`seen <METHOD> <target> <body length>`), so a
//! client can tell which request a response answers.
//!
//! `Recorder::serial` is the same app serving one request at a time, as a
//! single-threaded app does (python's `http.server`, one sync gunicorn
//! worker): one connection accepted, one request read and answered with
//! `Connection: close`, then the next. It counts the connections it accepted,
//! and answers `GET /big?mb=N` with N MiB, for the hostile-client tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::loopback;

/// One thing the app read from the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole request.
    Request {
        method: String,
        target: String,
        body: Vec<u8>,
    },
    /// A request head whose body never ended (the proxy closed inside it).
    Cut { method: String, target: String },
    /// Bytes no strict HTTP/1.1 server would frame one way only.
    Bad(String),
}

impl Seen {
    pub fn request(method: &str, target: &str, body: &[u8]) -> Seen {
        Seen::Request {
            method: method.into(),
            target: target.into(),
            body: body.to_vec(),
        }
    }

    /// The body of the 200 the recorder answers this request with.
    pub fn answer(&self) -> Option<String> {
        match self {
            Seen::Request {
                method,
                target,
                body,
            } => Some(format!("seen {method} {target} {}", body.len())),
            _ => None,
        }
    }
}

/// The recording app; stops when dropped.
pub struct Recorder {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
    stop: CancellationToken,
}

/// The longest the serial app spends on one connection (gunicorn's worker
/// timeout is 30 s): a stalled request does not hold it forever.
const SERIAL_BOUND: Duration = Duration::from_secs(30);

impl Recorder {
    async fn bind() -> (TcpListener, Recorder) {
        let listener = TcpListener::bind(loopback()).await.expect("bind recorder");
        let recorder = Recorder {
            addr: listener.local_addr().expect("recorder addr"),
            log: Arc::default(),
            connections: Arc::default(),
            stop: CancellationToken::new(),
        };
        (listener, recorder)
    }

    /// The app serving one request at a time (see the module doc).
    pub async fn serial() -> Recorder {
        let (listener, recorder) = Recorder::bind().await;
        let (log, stop) = (recorder.log.clone(), recorder.stop.clone());
        let connections = recorder.connections.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    _ = tokio::time::timeout(SERIAL_BOUND, serve_one(stream, &log)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
        recorder
    }

    pub async fn start() -> Recorder {
        let (listener, recorder) = Recorder::bind().await;
        let (log, stop) = (recorder.log.clone(), recorder.stop.clone());
        let connections = recorder.connections.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, log) => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        recorder
    }

    /// Connections the app accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// What the app has read so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reads requests off one connection until it closes or goes bad.
async fn serve(mut stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let mut input = Input {
        buf: Vec::new(),
        stream: &mut stream,
    };
    loop {
        let seen = match read_request(&mut input).await {
            Ok(Some(seen)) => seen,
            Ok(None) => return,
            Err(seen) => {
                log.lock().unwrap().push(seen);
                return;
            }
        };
        let answer = seen.answer().unwrap_or_default();
        log.lock().unwrap().push(seen);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if input.stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The serial app's one request on `stream`, answered and closed.
async fn serve_one(mut stream: TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut input = Input {
        buf: Vec::new(),
        stream: &mut stream,
    };
    let seen = match read_request(&mut input).await {
        Ok(Some(seen)) => seen,
        Ok(None) => return,
        Err(seen) => {
            log.lock().unwrap().push(seen);
            return;
        }
    };
    let big = match &seen {
        Seen::Request { target, .. } => target
            .strip_prefix("/big?mb=")
            .and_then(|n| n.parse::<usize>().ok()),
        _ => None,
    };
    let answer = seen.answer().unwrap_or_default();
    log.lock().unwrap().push(seen);
    let Some(mib) = big else {
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        return;
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        mib << 20
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b'x'; 1 << 16];
    for _ in 0..(mib << 4) {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

/// A connection's bytes, read on demand.
struct Input<'a> {
    buf: Vec<u8>,
    stream: &'a mut TcpStream,
}

impl Input<'_> {
    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut more = [0u8; 16 * 1024];
        match self.stream.read(&mut more).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&more[..n]);
                true
            }
        }
    }

    /// The next `n` bytes, or None when the stream ends first.
    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// The next line without its CRLF; a bare LF or CR is an error.
    async fn line(&mut self) -> Option<Result<Vec<u8>, ()>> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                let line = &line[..line.len() - 1];
                return Some(match line.strip_suffix(b"\r") {
                    Some(text) if !text.contains(&b'\r') => Ok(text.to_vec()),
                    _ => Err(()),
                });
            }
            if !self.fill().await {
                return None;
            }
        }
    }
}

/// One request: Ok(None) at a clean end of the connection, Err for what is
/// logged instead of a request.
async fn read_request(input: &mut Input<'_>) -> Result<Option<Seen>, Seen> {
    let bad = |why: &str| Seen::Bad(why.to_string());
    let mut lines = Vec::new();
    loop {
        match input.line().await {
            None if lines.is_empty() && input.buf.is_empty() => return Ok(None),
            None => return Err(bad("closed inside a head")),
            Some(Err(())) => return Err(bad("a line not ended by CRLF")),
            Some(Ok(line)) if line.is_empty() => break,
            Some(Ok(line)) => lines.push(line),
        }
    }
    let text: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let mut parts = text[0].split(' ');
    let (Some(method), Some(target), Some("HTTP/1.1"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Seen::Bad(format!("request line {:?}", text[0])));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut lengths = Vec::new();
    let mut codings = Vec::new();
    for line in &text[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Seen::Bad(format!("header line {line:?}")));
        };
        if name.is_empty() || name.contains([' ', '\t']) || line.contains('\0') {
            return Err(Seen::Bad(format!("header line {line:?}")));
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            lengths.extend(value.split(',').map(|v| v.trim().to_string()));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(value.split(',').map(|v| v.trim().to_ascii_lowercase()));
        }
    }
    let cut = || Seen::Cut {
        method: method.clone(),
        target: target.clone(),
    };
    let body = match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Vec::new(),
        ([], [chunked]) if chunked == "chunked" => match read_chunked(input).await {
            Some(Ok(body)) => body,
            Some(Err(why)) => return Err(Seen::Bad(why)),
            None => return Err(cut()),
        },
        (lengths, []) => {
            let first = &lengths[0];
            let valid = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
            if !valid || lengths.iter().any(|l| l != first) {
                return Err(Seen::Bad(format!("content-length {lengths:?}")));
            }
            let n: usize = first.parse().map_err(|_| bad("content-length too big"))?;
            input.take(n).await.ok_or_else(cut)?
        }
        _ => {
            return Err(Seen::Bad(format!(
                "framing: content-length {lengths:?}, transfer-encoding {codings:?}"
            )));
        }
    };
    Ok(Some(Seen::Request {
        method,
        target,
        body,
    }))
}

/// A chunked body, strictly: hex size (an extension allowed), CRLF, data,
/// CRLF; trailers after the last chunk. None: the stream ended inside it.
async fn read_chunked(input: &mut Input<'_>) -> Option<Result<Vec<u8>, String>> {
    let mut body = Vec::new();
    loop {
        let Ok(line) = input.line().await? else {
            return Some(Err("a chunk line not ended by CRLF".into()));
        };
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size).ok();
        let Some(size) = size.and_then(|s| usize::from_str_radix(s, 16).ok()) else {
            return Some(Err(format!(
                "chunk size {:?}",
                String::from_utf8_lossy(&line)
            )));
        };
        if size == 0 {
            loop {
                match input.line().await? {
                    Ok(line) if line.is_empty() => return Some(Ok(body)),
                    Ok(_) => {}
                    Err(()) => return Some(Err("a trailer not ended by CRLF".into())),
                }
            }
        }
        body.extend_from_slice(&input.take(size).await?);
        if input.take(2).await? != b"\r\n" {
            return Some(Err("chunk data not followed by CRLF".into()));
        }
    }
}
