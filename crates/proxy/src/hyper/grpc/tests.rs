use http::header::{HOST, TE};
use http::{HeaderMap, HeaderValue, Request};

use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

#[test]
fn te_trailers_is_seen_among_other_tokens() {
    assert!(wants_trailers(&headers(&[("te", "trailers")])));
    assert!(wants_trailers(&headers(&[("te", "gzip, Trailers")])));
    assert!(!wants_trailers(&headers(&[("te", "gzip")])));
    assert!(!wants_trailers(&HeaderMap::new()));
}

#[test]
fn the_head_becomes_http2_with_authority_and_te() {
    let req = Request::builder()
        .uri("/pkg.Svc/Call?x=1")
        .header(HOST, "api.example:8080")
        .body(())
        .unwrap();
    let (mut parts, ()) = req.into_parts();
    to_h2c(&mut parts, true).unwrap();
    assert_eq!(
        parts.uri.to_string(),
        "http://api.example:8080/pkg.Svc/Call?x=1"
    );
    assert_eq!(parts.version, Version::HTTP_2);
    assert!(parts.headers.get(HOST).is_none());
    assert_eq!(parts.headers.get(TE).unwrap(), "trailers");
}

#[test]
fn a_head_without_host_is_refused() {
    let (mut parts, ()) = Request::new(()).into_parts();
    assert!(matches!(
        to_h2c(&mut parts, false),
        Err(ProxyError::BadHost)
    ));
}

#[test]
fn verdicts() {
    let grpc = headers(&[("content-type", "application/grpc")]);
    assert!(matches!(verdict(false, &grpc), Verdict::InTrailers));
    assert!(matches!(verdict(true, &grpc), Verdict::Now(true)));
    let only = headers(&[("content-type", "application/grpc"), ("grpc-status", "14")]);
    assert!(matches!(verdict(false, &only), Verdict::Now(true)));
    let ok = headers(&[
        ("content-type", "application/grpc+proto"),
        ("grpc-status", "0"),
    ]);
    assert!(matches!(verdict(false, &ok), Verdict::Now(false)));
    let plain = headers(&[("content-type", "text/plain")]);
    assert!(matches!(verdict(false, &plain), Verdict::Now(false)));
}
