//! Shared helpers for the tests against the real Docker engine.
//!
//! The engine starts with no images and there is no registry, so the tests build
//! `FROM scratch` images of the demo app around a statically linked teal
//! (`scripts/build-static`). Tests run as separate processes (nextest) or
//! threads (`cargo test`), so building is done once, under a file lock, and
//! every image carries a label with the hash of what it was built from: a later
//! test (or run) that finds the label reuses the image.
//!
//! Images (`teal-test/...`), all running `teal demo-app --bind 0.0.0.0`:
//! - `app:1` and `app:2`: two builds with different image IDs; the app reports
//!   `"greeting": "build-1"` / `"build-2"`, so a test can tell which bits answer;
//! - `crash:1`: exits with code 2 at start (an unknown subcommand);
//! - `healthy:1` / `unhealthy:1`: a Docker HEALTHCHECK that passes / always fails.
//!
//! A version starting with `broken` makes any of them answer 500 (the demo app reads
//! `TEAL_VERSION`, which the runtime sets).

use std::collections::HashMap;
use std::fs::File;
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptions,
};
use futures_util::StreamExt;
use nix::fcntl::{Flock, FlockArg};
use teal::spec::{DockerLimits, DockerSpec, RuntimeSpec, ServiceSpec};

use super::{TEAL, demo_service, require};

pub const APP_1: &str = "teal-test/app:1";
pub const APP_2: &str = "teal-test/app:2";
pub const CRASH: &str = "teal-test/crash:1";
pub const HEALTHY: &str = "teal-test/healthy:1";
pub const UNHEALTHY: &str = "teal-test/unhealthy:1";
/// The port the demo app listens on inside the containers.
pub const APP_PORT: u16 = 8080;
const HASH_LABEL: &str = "teal.test.hash";

/// This machine's engine, or None (after [`require`], which panics in CI) when
/// it is unreachable.
pub async fn connect() -> Option<Docker> {
    let docker = match Docker::connect_with_defaults() {
        Ok(d) => d.negotiate_version().await.ok(),
        Err(_) => None,
    };
    require("the Docker engine", docker.is_some()).then(|| docker.unwrap())
}

/// [`connect`], with the test images built on first use.
pub async fn engine() -> Option<Docker> {
    let docker = connect().await?;
    ensure_images(&docker).await;
    Some(docker)
}

/// A user-defined network `name` (already there is fine: tests share names
/// across runs and remove it at their end).
pub async fn create_network(docker: &Docker, name: &str) {
    let _ = docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: name.into(),
            ..Default::default()
        })
        .await;
}

/// A docker service of the demo app: `image`, `instances` per slot.
pub fn docker_service(name: &str, dir: &Path, image: &str, instances: usize) -> ServiceSpec {
    let mut spec = demo_service(name, dir, instances);
    spec.runtime = RuntimeSpec::Docker(DockerSpec {
        image: image.into(),
        port: APP_PORT,
        command: Some(vec!["--boot-delay".into(), "200ms".into()]),
        volumes: Vec::new(),
        restart: "always".into(),
        log_driver: None,
        limits: DockerLimits::default(),
        network: None,
        keep_images: 3,
    });
    spec.health.deadline = Duration::from_secs(20);
    spec
}

pub fn docker_spec(spec: &mut ServiceSpec) -> &mut DockerSpec {
    match &mut spec.runtime {
        RuntimeSpec::Docker(d) => d,
        _ => panic!("not a docker service"),
    }
}

/// Every container labelled with `service`.
pub async fn containers(docker: &Docker, service: &str) -> Vec<ContainerSummary> {
    containers_labelled(docker, &format!("teal.service={service}")).await
}

/// Every container, running or not, with `label` (`key=value`).
pub async fn containers_labelled(docker: &Docker, label: &str) -> Vec<ContainerSummary> {
    let filters = HashMap::from([("label", vec![label.to_string()])]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
}

/// Names of the containers labelled with `service`, sorted.
pub async fn container_names(docker: &Docker, service: &str) -> Vec<String> {
    let mut names: Vec<String> = containers(docker, service)
        .await
        .iter()
        .filter_map(|c| c.names.as_ref()?.first().cloned())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    names.sort();
    names
}

/// Removes every container labelled with `service` (tests start and end with it).
pub async fn remove_containers(docker: &Docker, service: &str) {
    for c in containers(docker, service).await {
        if let Some(id) = c.id {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(&id, Some(options)).await;
        }
    }
}

/// The image ID a reference names now.
pub async fn image_id(docker: &Docker, reference: &str) -> String {
    docker
        .inspect_image(reference)
        .await
        .expect("inspect image")
        .id
        .expect("image id")
}

/// `(container id, StartedAt)` of a container: changes when it is recreated or restarted.
pub async fn identity(docker: &Docker, name: &str) -> (String, String) {
    let info = docker
        .inspect_container(name, None)
        .await
        .expect("inspect container");
    (
        info.id.unwrap_or_default(),
        info.state.and_then(|s| s.started_at).unwrap_or_default(),
    )
}

/// The "greeting" field of a demo-app answer (which build answered).
pub fn greeting_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("greeting")?
        .as_str()
        .map(str::to_string)
}

/// Builds an image from a Dockerfile and extra files, tagged `tag`.
pub async fn build(docker: &Docker, tag: &str, dockerfile: &str, files: &[(&str, &[u8])]) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        tar.append_data(&mut header, name, data).expect("tar entry");
    };
    add("Dockerfile", dockerfile.as_bytes(), 0o644);
    for (name, data) in files {
        add(name, data, 0o755);
    }
    let context = tar.into_inner().expect("tar");
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .build();
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let info = step.unwrap_or_else(|e| panic!("building {tag}: {e}"));
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            panic!("building {tag}: {error}");
        }
    }
}

/// Builds the shared images unless images with the same content hash exist.
async fn ensure_images(docker: &Docker) {
    let static_dir = target_dir().join("static");
    std::fs::create_dir_all(&static_dir).expect("target/static");
    let lock = File::create(static_dir.join("images.lock")).expect("lock file");
    // Blocking is fine: every docker test waits for the same images.
    let _lock = Flock::lock(lock, FlockArg::LockExclusive).expect("flock");

    let binary = static_teal();
    let bytes = std::fs::read(&binary).expect("read static teal");
    let mut hasher = DefaultHasher::new();
    hasher.write(&bytes);
    let base = dockerfiles("0");
    hasher.write(format!("{base:?}").as_bytes());
    let hash = format!("{:016x}", hasher.finish());

    let mut replaced = Vec::new();
    for (tag, dockerfile) in dockerfiles(&hash) {
        let current = docker.inspect_image(tag).await.ok();
        let current_hash = current
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(HASH_LABEL).cloned());
        if current_hash.as_deref() == Some(hash.as_str()) {
            continue;
        }
        // The previous generation goes once nothing uses it (the engine refuses otherwise).
        let previous = current.and_then(|i| i.id);
        eprintln!("building test image {tag}");
        let files: Vec<(&str, &[u8])> = if dockerfile.contains("COPY teal") {
            vec![("teal", &bytes)]
        } else {
            Vec::new()
        };
        build(docker, tag, &dockerfile, &files).await;
        replaced.extend(previous);
    }
    // Children first: an image others were built FROM goes last.
    for previous in replaced.iter().rev() {
        let _ = docker
            .remove_image(previous, None::<RemoveImageOptions>, None)
            .await;
    }
}

/// The test images, in build order (later ones start `FROM` the first).
fn dockerfiles(hash: &str) -> Vec<(&'static str, String)> {
    let label = format!("LABEL {HASH_LABEL}={hash}");
    vec![
        (
            APP_1,
            format!(
                "FROM scratch\nCOPY teal /teal\nENV GREETING=build-1\n{label}\nENTRYPOINT [\"/teal\", \"demo-app\", \"--bind\", \"0.0.0.0\"]\n"
            ),
        ),
        (
            APP_2,
            format!("FROM {APP_1}\nENV GREETING=build-2\n{label}\n"),
        ),
        (
            CRASH,
            format!("FROM {APP_1}\n{label}\nENTRYPOINT [\"/teal\", \"crash-at-start\"]\n"),
        ),
        (
            HEALTHY,
            format!(
                "FROM {APP_1}\n{label}\nHEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/teal\", \"demo-app\", \"--help\"]\n"
            ),
        ),
        (
            UNHEALTHY,
            format!(
                "FROM {APP_1}\n{label}\nHEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD [\"/teal\", \"no-such-check\"]\n"
            ),
        ),
    ]
}

/// `target/` of this build (the test binary's `teal` lives in `target/debug`).
fn target_dir() -> PathBuf {
    Path::new(TEAL)
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The statically linked teal, built by `scripts/build-static` (a no-op when it is
/// up to date), checked to have no ELF interpreter (no dynamic loader needed).
pub fn static_teal() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(root.join("scripts/build-static"))
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run scripts/build-static");
    assert!(
        output.status.success(),
        "scripts/build-static failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let path = if path.is_absolute() {
        path
    } else {
        root.join(path)
    };
    let elf = std::fs::read(&path).expect("read static teal");
    assert!(
        !has_interpreter(&elf),
        "{} is not statically linked",
        path.display()
    );
    path
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let header = phoff + i * size;
        u32::from_le_bytes(elf[header..header + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}
