use crate::config::fixtures::{WEB, assert_err, ok};
use crate::spec::Protocol;

#[test]
fn protocol_defaults_to_http1_and_takes_h2c() {
    assert_eq!(ok(WEB).services["web"].protocol, Protocol::Http1);
    let config = ok(&format!("{WEB}protocol = \"h2c\"\n"));
    assert_eq!(config.services["web"].protocol, Protocol::H2c);
    assert_eq!(config.services["web"].health.grpc, None);
}

#[test]
fn an_unknown_protocol_is_refused_where_it_is_written() {
    assert_err(
        &format!("{WEB}protocol = \"h2\"\n"),
        3,
        12,
        &["services.web.protocol", "\"http1\" or \"h2c\"", "\"h2\""],
    );
}

#[test]
fn grpc_health_is_true_or_a_service_name() {
    let h2c = format!("{WEB}protocol = \"h2c\"\n[services.web.health]\n");
    let on = ok(&format!("{h2c}grpc = true\n"));
    assert_eq!(on.services["web"].health.grpc.as_deref(), Some(""));
    let named = ok(&format!("{h2c}grpc = \"pkg.Echo\"\n"));
    assert_eq!(
        named.services["web"].health.grpc.as_deref(),
        Some("pkg.Echo")
    );
    let off = ok(&format!("{h2c}grpc = false\n"));
    assert_eq!(off.services["web"].health.grpc, None);
}

#[test]
fn grpc_health_needs_h2c() {
    assert_err(
        &format!("{WEB}[services.web.health]\ngrpc = true\n"),
        4,
        8,
        &["services.web.health.grpc", "protocol = \"h2c\""],
    );
}

#[test]
fn old_specs_without_protocol_still_load() {
    let spec = &ok(WEB).services["web"];
    let mut json = serde_json::to_value(spec).unwrap();
    assert!(json.get("protocol").is_none(), "http1 is not written");
    assert!(json["health"].get("grpc").is_none());
    json.as_object_mut().unwrap().remove("protocol");
    let back: crate::spec::ServiceSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back.protocol, Protocol::Http1);
}
