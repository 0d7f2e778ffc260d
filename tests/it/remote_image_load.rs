//! The host's half of image shipping, `teal image has|load`, run as the binary
//! against this machine's engine, as ssh runs it on a host: a whole stream
//! loads; a stream that broke off, or is not teal's, loads nothing and says so
//! in one line; an unreachable engine is named.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::workstation::{remove_image, unique};
use async_compression::tokio::bufread::ZstdEncoder;
use futures_util::TryStreamExt;
use tokio::io::AsyncReadExt;

use crate::support::{TEAL, docker};

/// Runs `teal ARGS` with `input` on stdin.
fn teal(args: &[&str], input: &[u8], docker_host: Option<&str>) -> Output {
    let mut cmd = Command::new(TEAL);
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    let mut child = cmd.spawn().expect("teal runs");
    let mut stdin = child.stdin.take().unwrap();
    // The command may stop reading early (a damaged stream): that is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn presence(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_load_takes_whole_streams_only() {
    let Some(docker) = docker::connect().await else {
        return;
    };

    // An image the engine has not seen, exported and compressed, then removed.
    let reference = format!("teal-ship-test/load{}:1", unique());
    let teal_bytes = std::fs::read(docker::static_teal()).unwrap();
    let dockerfile = format!(
        "FROM scratch\nCOPY teal /teal\nLABEL teal.test.unique={}\n",
        unique()
    );
    docker::build(&docker, &reference, &dockerfile, &[("teal", &teal_bytes)]).await;
    let id = docker::image_id(&docker, &reference).await;
    let archive: Vec<u8> = docker
        .export_image(&id)
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .unwrap();
    let mut zstd = Vec::new();
    ZstdEncoder::new(archive.as_slice())
        .read_to_end(&mut zstd)
        .await
        .unwrap();
    remove_image(&docker, &id).await;
    let absent = |out: &Output| presence(out)["present"] == false;
    assert!(absent(&teal(&["image", "has", &id], b"", None)));

    // Broken off half way: refused, nothing loaded.
    let out = teal(
        &["image", "load", "--expect", &id, "--tag", &reference],
        &zstd[..zstd.len() / 2],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stderr(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("error: the image stream broke off or is damaged")
            && line.contains("nothing was loaded"),
        "{line}"
    );
    assert!(absent(&teal(&["image", "has", &id], b"", None)));

    // Not a zstd stream at all (say, a plain `docker save`): refused the same way.
    let out = teal(&["image", "load", "--expect", &id], &archive[..4096], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("broke off or is damaged"),
        "{}",
        stderr(&out)
    );

    // The whole stream: loaded, checked and tagged.
    let out = teal(
        &["image", "load", "--expect", &id, "--tag", &reference],
        &zstd,
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        presence(&teal(&["image", "has", &id], b"", None))["present"],
        true
    );
    assert_eq!(docker::image_id(&docker, &reference).await, id);

    // No engine to ask: the answer says where teal looked.
    let dead = "unix:///nonexistent/teal-test/docker.sock";
    let out = teal(&["image", "has", &id], b"", Some(dead));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("error: cannot reach the Docker engine at {dead}")),
        "{}",
        stderr(&out)
    );
    remove_image(&docker, &id).await;
}
