use std::time::Duration;

use super::*;
use crate::router::nginx::routes::{MaintenanceRoute, maintenance_text};

fn service(maintenance: Vec<MaintenanceRoute>) -> ServiceRoute {
    ServiceRoute {
        name: "web".into(),
        hosts: vec!["a.test".into(), "b.test".into()],
        preview: None,
        live: None,
        staged: None,
        drain_timeout: Duration::from_secs(1),
        tls: None,
        max_body: None,
        maintenance,
        h2c: false,
    }
}

#[test]
fn a_message_nginx_could_misread_is_refused() {
    assert_eq!(maintenance_text("back at 5\n").unwrap(), "back at 5\\n");
    for bad in ["costs $5", "say \"hi\"", "a;b", "a\\b", "two\nlines", "{x}"] {
        assert!(maintenance_text(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn maintenance_of_one_host_keeps_proxying_the_others() {
    let one = MaintenanceRoute {
        host: Some("b.test".into()),
        text: "down\\n".into(),
        retry_after: 60,
    };
    let mut out = String::new();
    production_location(&mut out, "/", &service(vec![one.clone()]));
    assert!(out.contains("if ($host = \"b.test\") {"), "{out}");
    assert!(out.contains("add_header Retry-After 60 always;"), "{out}");
    assert!(out.contains("return 503 \"down\\n\";"), "{out}");
    // No live backend: the rest answers 503 as without maintenance.
    assert!(out.contains("        return 503;\n"), "{out}");

    let all = MaintenanceRoute { host: None, ..one };
    let mut out = String::new();
    production_location(&mut out, "/", &service(vec![all]));
    assert!(!out.contains("if ("), "{out}");
    assert_eq!(out.matches("return 503").count(), 1, "{out}");
}
