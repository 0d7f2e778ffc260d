//! Test clients: an HTTP/1.1 keep-alive connection, one-shot requests, raw
//! socket exchanges and a websocket round trip. Every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::{EXCHANGE, loopback};

/// What a client got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// One HTTP/1.1 keep-alive client connection.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        Conn::over(stream).await
    }

    /// A client connection over `stream` (a TLS one, say).
    pub async fn over<S>(stream: S) -> Result<Conn, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn.with_upgrades());
        Ok(Conn { sender })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Result<Reply, String> {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, String> {
        let exchange = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let response = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(EXCHANGE, exchange)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

/// One request on a fresh connection.
pub async fn get_fresh(addr: SocketAddr, host: &str, path: &str) -> Result<Reply, String> {
    Conn::open(addr).await?.get(host, path).await
}

/// An address with nothing listening on it.
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    listener.local_addr().unwrap()
}

/// Writes `request` on a fresh connection and reads until the peer closes.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

/// What the peer sends until it closes (or a reset, or the exchange bound).
pub async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(EXCHANGE, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a Content-Length body from `stream`.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read a response");
            assert!(
                n > 0,
                "closed mid-response: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// True when the peer closes the connection within the exchange bound.
pub async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(EXCHANGE, wait).await.is_ok()
}

pub async fn ws_exchange(
    ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>,
    text: &str,
) -> String {
    ws.send(Message::text(text)).await.unwrap();
    let reply = tokio::time::timeout(EXCHANGE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    reply.into_text().unwrap().as_str().to_string()
}
