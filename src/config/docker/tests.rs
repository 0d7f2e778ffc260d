//! The docker runtime's keys in `teal.toml` (`docker.rs`): defaults, values,
//! memory sizes, the keys refused for the process runtime, and each error with
//! its message and line:column.

use std::path::Path;

use super::bytes;
use crate::config::fixtures::{FILE, WEB, assert_err};
use crate::config::parse;
use crate::spec::{DockerLimits, DockerSpec, RuntimeSpec};

const HEAD: &str = "[services.web]\nruntime = \"docker\"\n";

fn docker(text: &str) -> DockerSpec {
    let config = parse(&format!("{HEAD}{text}"), Path::new(FILE))
        .unwrap_or_else(|e| panic!("expected a valid config, got: {e}"));
    match &config.services["web"].runtime {
        RuntimeSpec::Docker(d) => d.clone(),
        other => panic!("not docker: {other:?}"),
    }
}

#[test]
fn memory_sizes_are_powers_of_1024() {
    assert_eq!(bytes("512m"), Some(512 << 20));
    assert_eq!(bytes("1G"), Some(1 << 30));
    assert_eq!(bytes("64MiB"), Some(64 << 20));
    assert_eq!(bytes("4096"), Some(4096));
    assert_eq!(bytes("1.5g"), None);
    assert_eq!(bytes("lots"), None);
}

#[test]
fn a_docker_service_gets_its_defaults() {
    let d = docker("image = \"uptimer:{version}\"\nport = 8080\n");
    assert_eq!(
        d,
        DockerSpec {
            image: "uptimer:{version}".into(),
            port: 8080,
            command: None,
            volumes: Vec::new(),
            restart: "always".into(),
            log_driver: None,
            limits: DockerLimits::default(),
            network: None,
            keep_images: 3,
        }
    );
}

#[test]
fn every_docker_key_is_read() {
    let d = docker(
        r#"image = "registry.example.com:5000/team/app:{version}"
port = 3000
command = ["--boot-delay", "1s", "{version}", "{port}"]
volumes = ["./data:/data", "/etc/app:/etc/app:ro", "cache:/cache:rw"]
restart = "on-failure:5"
log_driver = "journald"
network = "web-gateway"
keep_images = 5
limits = { memory = "512m", cpus = 1.5 }
"#,
    );
    assert_eq!(d.port, 3000);
    assert_eq!(d.command.unwrap().len(), 4);
    assert_eq!(
        d.volumes,
        [
            "/srv/app/./data:/data",
            "/etc/app:/etc/app:ro",
            "cache:/cache:rw"
        ]
    );
    assert_eq!(d.restart, "on-failure:5");
    assert_eq!(d.log_driver.as_deref(), Some("journald"));
    assert_eq!(d.network.as_deref(), Some("web-gateway"));
    assert_eq!(d.keep_images, 5);
    assert_eq!(d.limits.memory, Some(512 << 20));
    assert_eq!(d.limits.cpus, Some(1.5));
    assert_eq!(
        docker("image = \"a\"\nport = 1\n[services.web.limits]\ncpus = 2\n")
            .limits
            .cpus,
        Some(2.0)
    );
}

#[test]
fn a_docker_service_needs_an_image_and_a_port() {
    assert_err(
        &format!("{HEAD}port = 80\n"),
        1,
        11,
        &["uses the docker runtime but has no image"],
    );
    assert_err(&format!("{HEAD}image = \"a\"\n"), 1, 11, &["has no port"]);
    assert_err(
        &format!("{HEAD}image = \"a\"\nport = 0\n"),
        4,
        8,
        &["port must be between 1 and 65535"],
    );
    assert_err(
        &format!("{HEAD}image = \"a\"\nport = 70000\n"),
        4,
        8,
        &["(got 70000)"],
    );
}

#[test]
fn image_references_are_checked() {
    for (image, why) in [
        ("App:1", "lowercase"),
        ("app:{tag}", "only placeholder is {version}"),
        ("app:1 2", "without spaces"),
        ("app:-x", "a tag is"),
        ("app@sha256:abc", "64 hex digits"),
        ("", "non-empty"),
    ] {
        assert_err(
            &format!("{HEAD}image = \"{image}\"\nport = 80\n"),
            3,
            9,
            &["invalid services.web.image", why],
        );
    }
    let digest = format!("app@sha256:{}", "a".repeat(64));
    assert_eq!(
        docker(&format!("image = \"{digest}\"\nport = 80\n")).image,
        digest
    );
    assert_eq!(
        docker("image = \"localhost/app\"\nport = 80\n").image,
        "localhost/app"
    );
}

#[test]
fn docker_values_are_checked() {
    let base = format!("{HEAD}image = \"a\"\nport = 80\n");
    let cases: &[(&str, usize, &[&str])] = &[
        ("command = []\n", 11, &["command is empty"]),
        ("volumes = [\"data\"]\n", 12, &["expected two or three"]),
        (
            "volumes = [\"./d:rel\"]\n",
            12,
            &["target must be an absolute path"],
        ),
        ("volumes = [\"./d:/d:rx\"]\n", 12, &["mode must be"]),
        ("volumes = [\"~/d:/d\"]\n", 12, &["'~' is not expanded"]),
        ("volumes = [\"bad name:/d\"]\n", 12, &["a volume name is"]),
        (
            "restart = \"sometimes\"\n",
            11,
            &["invalid services.web.restart"],
        ),
        ("restart = \"on-failure:0\"\n", 11, &["on-failure:N"]),
        (
            "log_driver = \"\"\n",
            14,
            &["invalid services.web.log_driver"],
        ),
        ("network = \"host\"\n", 11, &["user-defined network"]),
        ("network = \"a b\"\n", 11, &["invalid services.web.network"]),
        (
            "keep_images = 0\n",
            15,
            &["keep_images must be between 1 and 100"],
        ),
        (
            "limits = { memory = \"lots\" }\n",
            21,
            &["invalid services.web.limits.memory"],
        ),
        ("limits = { memory = \"1m\" }\n", 21, &["at least 6m"]),
        (
            "limits = { cpus = 0 }\n",
            19,
            &["limits.cpus must be between"],
        ),
        (
            "limits = { disk = 1 }\n",
            12,
            &["unknown key \"disk\" in [services.web.limits]"],
        ),
    ];
    for (line, col, pieces) in cases {
        assert_err(&format!("{base}{line}"), 5, *col, pieces);
    }
}

#[test]
fn docker_keys_are_rejected_for_the_process_runtime() {
    let web = "[services.web]\ncommand = [\"./app\"]\n";
    assert_err(
        &format!("{web}image = \"app:1\"\n"),
        3,
        9,
        &["services.web.image is for the docker runtime"],
    );
    assert_err(
        &format!("{web}port = 80\n"),
        3,
        8,
        &["services.web.port is for the docker runtime"],
    );
    for (key, value) in [
        ("volumes", "[\"a:/a\"]"),
        ("restart", "\"always\""),
        ("log_driver", "\"local\""),
        ("network", "\"n\""),
        ("keep_images", "3"),
        ("limits", "{ cpus = 1 }"),
    ] {
        assert_err(
            &format!("{web}{key} = {value}\n"),
            3,
            // A list points at its first entry.
            key.len() + 4 + usize::from(key == "volumes"),
            &[
                &format!("services.web.{key} is for the docker runtime"),
                "runtime = \"docker\"",
            ],
        );
    }
}

#[test]
fn docker_settings_are_rejected_for_the_process_runtime() {
    assert_err(
        &format!("{WEB}image = \"app:1\"\n"),
        3,
        9,
        &["services.web.image is for the docker runtime"],
    );
    assert_err(
        &format!("{WEB}port = 80\n"),
        3,
        8,
        &["services.web.port is for the docker runtime"],
    );
}
