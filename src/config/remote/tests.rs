//! `servers`, `[ssh]` and `[hosts."NAME"]`: values, defaults and located errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::fixtures::FILE;
use crate::config::parse_remote;
use crate::spec::{Destination, RemoteSpec, SshSpec};

const EXAMPLE: &str = r#"
[proxy]
listen = "127.0.0.1:8080"
control = "/tmp/local.sock"

[ssh]
config = "ssh_config"
connect_timeout = "5s"
teal_path = "/opt/teal/bin/teal"
binary = "target/x86_64-unknown-linux-musl/release/teal"

[services.web]
command = ["./app"]
servers = ["deploy@web1", "web2:2222"]

[hosts."web1"]
state_dir = "/srv/teal"
proxy = { listen = "0.0.0.0:80" }

[hosts."web2:2222"]
teal_path = "~/bin/teal"
"#;

fn remote(text: &str) -> RemoteSpec {
    match parse_remote(text, Path::new(FILE)) {
        Ok((_, remote)) => remote,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

#[track_caller]
fn assert_err(text: &str, line: usize, col: usize, piece: &str) {
    match parse_remote(text, Path::new(FILE)) {
        Ok(_) => panic!("expected an error about {piece:?}"),
        Err(e) => {
            assert_eq!(e.location, Some((line, col)), "location of: {e}");
            assert!(e.message.contains(piece), "{piece:?} not in: {e}");
        }
    }
}

#[test]
fn the_example_resolves() {
    let r = remote(EXAMPLE);
    assert_eq!(
        r.ssh,
        SshSpec {
            config: Some(PathBuf::from("/srv/app/ssh_config")),
            connect_timeout: Duration::from_secs(5),
            teal_path: "/opt/teal/bin/teal".into(),
            binary: Some(PathBuf::from(
                "/srv/app/target/x86_64-unknown-linux-musl/release/teal"
            )),
        }
    );
    let servers: Vec<String> = r.servers["web"]
        .iter()
        .map(Destination::to_string)
        .collect();
    assert_eq!(servers, ["deploy@web1", "web2:2222"]);
    // `control` is a local path: hosts use their own default.
    assert_eq!(r.proxy.get("control"), None);
    assert_eq!(r.proxy["listen"].as_str(), Some("127.0.0.1:8080"));
    let web1 = r.host(&r.servers["web"][0]);
    assert_eq!(web1.state_dir.as_deref(), Some("/srv/teal"));
    assert_eq!(web1.proxy["listen"].as_str(), Some("0.0.0.0:80"));
    let web2 = r.host(&r.servers["web"][1]);
    assert_eq!(web2.teal_path.as_deref(), Some("~/bin/teal"));
}

#[test]
fn defaults_without_remote_settings() {
    let r = remote("[services.web]\ncommand = [\"./app\"]\n");
    assert_eq!(r.ssh, SshSpec::default());
    assert_eq!(r.ssh.teal_path, "~/.local/bin/teal");
    assert!(r.servers.is_empty() && r.hosts.is_empty());
}

#[test]
fn remote_settings_are_accepted_by_the_plain_loader() {
    crate::config::parse(EXAMPLE, Path::new(FILE)).expect("valid");
}

#[test]
fn unknown_keys_in_remote_sections_are_located() {
    assert_err(
        "[ssh]\nconfg = \"x\"\n",
        2,
        1,
        "unknown key \"confg\" in [ssh]; did you mean \"config\"?",
    );
    assert_err(
        "[hosts.a]\nstate = \"/x\"\n",
        2,
        1,
        "unknown key \"state\" in [hosts.a]",
    );
    assert_err(
        "[hosts.\"a\".proxy]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n",
        3,
        1,
        "unknown key \"listn\" in [hosts.a.proxy]",
    );
}

#[test]
fn bad_servers_are_located() {
    assert_err(
        "[services.web]\ncommand = [\"./app\"]\nservers = [\"a\", \"-oProxyCommand=x\"]\n",
        3,
        17,
        "invalid host \"-oProxyCommand=x\"",
    );
    assert_err(
        "[services.web]\ncommand = [\"./app\"]\nservers = [\"a:22\", \"a:22\"]\n",
        3,
        20,
        "server a:22 is listed twice",
    );
}

#[test]
fn bad_remote_values_are_located() {
    assert_err(
        "[ssh]\nteal_path = \"bin/teal\"\n",
        2,
        13,
        "ssh.teal_path must be an absolute path or start with ~/",
    );
    assert_err(
        "[ssh]\nconnect_timeout = \"0s\"\n",
        2,
        19,
        "ssh.connect_timeout must be greater than zero",
    );
    assert_err("[hosts.\"web 1\"]\n", 1, 8, "invalid host \"web 1\"");
    assert_err(
        "[hosts.a]\nstate_dir = \"state\"\n",
        2,
        13,
        "state_dir must be an absolute path",
    );
}

#[test]
fn a_host_proxy_override_is_validated_as_its_daemon_reads_it() {
    assert_err(
        "[hosts.a]\nproxy = { listen = \"nowhere\" }\n",
        1,
        8,
        "the host's daemon would not accept its [proxy] settings: invalid address \"nowhere\" for proxy.listen",
    );
    assert_err(
        "[hosts.a]\nproxy = { routr = \"builtin\" }\n",
        2,
        11,
        "unknown key \"routr\" in [hosts.a.proxy]",
    );
}

#[test]
fn the_daemon_config_parses_back() {
    let r = remote(EXAMPLE);
    let mut proxy = r.proxy.clone();
    proxy.extend(r.host(&r.servers["web"][0]).proxy);
    let text = crate::config::daemon_config("/srv/teal", &proxy);
    let config = crate::config::parse(&text, Path::new("/srv/teal/serve.toml")).expect("parses");
    assert_eq!(config.state_dir, PathBuf::from("/srv/teal"));
    assert_eq!(config.proxy.listen, "0.0.0.0:80".parse().unwrap());
    assert_eq!(config.proxy.control, PathBuf::from("/srv/teal/teal.sock"));
}
