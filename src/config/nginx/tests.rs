//! `[proxy.nginx]` and the limits of `router = "nginx"`, each error checked for
//! its message and its line:column.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::fixtures::{WEB, assert_err, ok};
use crate::spec::NginxSpec;

const NGINX: &str = "[proxy]\nrouter = \"nginx\"\n";

#[test]
fn managed_mode_is_the_default() {
    let config = ok(&format!("{NGINX}{WEB}"));
    assert_eq!(config.proxy.nginx, NginxSpec::default());
    assert!(!config.proxy.nginx.is_system());
    assert_eq!(config.proxy.nginx.keepalive_timeout, Duration::ZERO);
}

#[test]
fn managed_settings() {
    let config = ok(&format!(
        "{NGINX}[proxy.nginx]\nbinary = \"bin/nginx\"\nworkers = 4\nkeepalive_timeout = \"75s\"\ninclude = \"nginx/extra.conf\"\n{WEB}"
    ));
    let nginx = &config.proxy.nginx;
    assert_eq!(nginx.binary, PathBuf::from("/srv/app/bin/nginx"));
    assert_eq!(nginx.workers, Some(4));
    assert_eq!(nginx.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(
        nginx.include,
        Some(PathBuf::from("/srv/app/nginx/extra.conf"))
    );
    // A bare name is looked up in PATH when the daemon starts.
    let config = ok(&format!("{NGINX}[proxy.nginx]\nbinary = \"openresty\"\n"));
    assert_eq!(config.proxy.nginx.binary, PathBuf::from("openresty"));
}

#[test]
fn system_mode_settings() {
    let config = ok(&format!(
        "{NGINX}[proxy.nginx]\nconf_dir = \"/etc/nginx/conf.d\"\nmain_conf = \"/etc/nginx/nginx.conf\"\n\
         reload = [\"systemctl\", \"reload\", \"nginx\"]\npid_file = \"/run/nginx.pid\"\n{WEB}"
    ));
    let nginx = &config.proxy.nginx;
    assert!(nginx.is_system());
    assert_eq!(nginx.conf_dir, Some(PathBuf::from("/etc/nginx/conf.d")));
    assert_eq!(
        nginx.main_conf,
        Some(PathBuf::from("/etc/nginx/nginx.conf"))
    );
    assert_eq!(
        nginx.reload.as_deref(),
        Some(&["systemctl".to_string(), "reload".into(), "nginx".into()][..])
    );
}

#[test]
fn the_section_needs_router_nginx() {
    assert_err(
        "[proxy.nginx]\nworkers = 2\n",
        1,
        1,
        &["[proxy.nginx] is only used with router = \"nginx\""],
    );
}

#[test]
fn modes_do_not_mix() {
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nreload = [\"systemctl\", \"reload\", \"nginx\"]\n"),
        4,
        10,
        &[
            "proxy.nginx.reload is for system mode",
            "set proxy.nginx.conf_dir",
        ],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\npid_file = \"/run/nginx.pid\"\n"),
        4,
        12,
        &["proxy.nginx.pid_file is for system mode"],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nconf_dir = \"/etc/nginx/conf.d\"\nworkers = 2\n"),
        5,
        11,
        &["proxy.nginx.workers is for managed mode"],
    );
}

#[test]
fn bad_values() {
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nworkers = 0\n"),
        4,
        11,
        &["proxy.nginx.workers must be between 1 and 256"],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nkeepalive_timeout = \"soon\"\n"),
        4,
        21,
        &["invalid duration \"soon\" for proxy.nginx.keepalive_timeout"],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nconf_dir = \"/etc/nginx/conf.d\"\nreload = []\n"),
        5,
        10,
        &["proxy.nginx.reload must start with a program"],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\ninclude = \"extra\\\"; evil.conf\"\n"),
        4,
        11,
        &[
            "proxy.nginx.include",
            "cannot be written into an nginx config",
        ],
    );
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nbinary = \"\"\n"),
        4,
        10,
        &["proxy.nginx.binary must not be empty"],
    );
}

#[test]
fn unknown_keys_are_named() {
    assert_err(
        &format!("{NGINX}[proxy.nginx]\nconfdir = \"/etc/nginx/conf.d\"\n"),
        4,
        1,
        &[
            "unknown key \"confdir\" in [proxy.nginx]",
            "did you mean \"conf_dir\"",
        ],
    );
}

#[test]
fn port_zero_is_refused_with_nginx() {
    assert_err(
        "[proxy]\nrouter = \"nginx\"\nlisten = \"127.0.0.1:0\"\n",
        3,
        10,
        &["proxy.listen 127.0.0.1:0 uses port 0", "router = \"nginx\""],
    );
    assert_err(
        &format!("{NGINX}{WEB}preview = \"127.0.0.1:0\"\n"),
        5,
        11,
        &["services.web.preview 127.0.0.1:0 uses port 0"],
    );
    // The builtin router reports the port it picked: fine there.
    let config = ok(&format!("{WEB}preview = \"127.0.0.1:0\"\n"));
    assert_eq!(config.services["web"].preview.unwrap().port(), 0);
}

#[test]
fn state_dir_must_fit_in_an_nginx_config() {
    assert_err(
        &format!("state_dir = \"st\\\"ate\"\n{NGINX}"),
        1,
        13,
        &["state_dir (used in the nginx config teal writes)"],
    );
}

#[test]
fn an_h2c_service_under_nginx_needs_tls() {
    assert_err(
        &format!("{NGINX}{WEB}protocol = \"h2c\"\n"),
        3,
        11,
        &[
            "services.web has protocol = \"h2c\"",
            "over TLS only",
            "give [services.web] tls",
            "or use the builtin router",
        ],
    );
    let acme = "[proxy]\nrouter = \"nginx\"\n[proxy.tls]\nlisten = \"127.0.0.1:18443\"\nacme_email = \"ops@example.com\"\n[services.web]\ncommand = [\"./app\"]\nhosts = [\"rpc.example.com\"]\ntls = \"acme\"\nprotocol = \"h2c\"\n";
    assert!(ok(acme).services["web"].acme);
}
