//! Health checks over HTTP/2 with prior knowledge (services with
//! `protocol = "h2c"`): the connection, and the standard gRPC check
//! (`grpc.health.v1.Health/Check`), its tiny protobuf messages encoded by hand:
//! the request's field 1 is the service name (a string), the response's field
//! 1 its status (an enum; SERVING is 1), each in gRPC's 5-byte frame.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderMap, TE, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::Probe;

/// The check's path (package, service, method).
const CHECK: &str = "/grpc.health.v1.Health/Check";

/// `HealthCheckResponse.ServingStatus` names, by number.
const STATUS_NAMES: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// Sends `request` on a fresh HTTP/2 (prior knowledge) connection to `addr`.
pub(super) async fn send<B>(
    addr: SocketAddr,
    request: http::Request<B>,
) -> Result<http::Response<Incoming>, String>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = super::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}

/// One `grpc.health.v1.Health/Check` of `service` (`""`: the whole server).
pub(super) async fn check(addr: SocketAddr, service: &str) -> Result<Probe, String> {
    let request = http::Request::post(format!("http://{addr}{CHECK}"))
        .header(CONTENT_TYPE, "application/grpc")
        .header(TE, "trailers")
        .header(USER_AGENT, "teal-health")
        .body(Full::new(frame(&encode_request(service))))
        .map_err(|e| format!("bad gRPC health request: {e}"))?;
    let response = send(addr, request).await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Ok(Probe::Unhealthy {
            status,
            body: "not a gRPC answer".into(),
        });
    }
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("gRPC health response: {e}"))?;
    let trailers = body.trailers().cloned().unwrap_or_default();
    let message = body.to_bytes();
    // A trailers-only answer carries its status in the head.
    let code = grpc_status(&trailers).or_else(|| grpc_status(&head.headers));
    match code.as_deref() {
        Some("0") => {}
        Some(code) => {
            let why = trailers
                .get("grpc-message")
                .or_else(|| head.headers.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return Ok(Probe::Failed {
                error: format!("gRPC health check of {service:?}: grpc-status {code} {why}")
                    .trim_end()
                    .to_string(),
            });
        }
        None => return Err("gRPC health check: no grpc-status in the answer".into()),
    }
    let serving = decode_response(&message)?;
    if serving == 1 {
        Ok(Probe::Healthy { status })
    } else {
        let name = STATUS_NAMES.get(serving as usize).copied().unwrap_or("?");
        Ok(Probe::NotServing {
            service: service.to_string(),
            status: format!("{name} ({serving})"),
        })
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<String> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// `HealthCheckRequest { service = 1 }`: empty for `""` (proto3 default).
fn encode_request(service: &str) -> Bytes {
    let mut out = BytesMut::new();
    if !service.is_empty() {
        out.put_u8(0x0a); // field 1, length-delimited
        put_varint(&mut out, service.len() as u64);
        out.put_slice(service.as_bytes());
    }
    out.freeze()
}

/// gRPC's message frame: not compressed, a 4-byte big-endian length.
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or("gRPC health response: truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("gRPC health response: varint too long".into())
}

/// The `status` (field 1) of a framed `HealthCheckResponse`; 0 (UNKNOWN)
/// when absent. Other fields are skipped.
fn decode_response(framed: &[u8]) -> Result<u64, String> {
    let header: [u8; 5] = framed
        .get(..5)
        .and_then(|h| h.try_into().ok())
        .ok_or("gRPC health response: no message")?;
    if header[0] != 0 {
        return Err("gRPC health response: compressed, which teal did not ask for".into());
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let message = framed
        .get(5..5 + len)
        .ok_or("gRPC health response: message cut short")?;
    let mut at = 0;
    let mut status = 0;
    while at < message.len() {
        let key = varint(message, &mut at)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(message, &mut at)?,
            (_, 0) => {
                varint(message, &mut at)?;
            }
            (_, 1) => at += 8,
            (_, 5) => at += 4,
            (_, 2) => {
                let len = varint(message, &mut at)? as usize;
                at += len;
            }
            _ => return Err("gRPC health response: not a HealthCheckResponse".into()),
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests;
