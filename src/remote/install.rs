//! Installing teal on a host: compare identities (sha256), upload atomically
//! (temp file, checksum, rename) when missing or different, then check that it
//! runs there, refusing with a clear message when it cannot.

use std::time::Instant;

use super::binary::{LocalBinary, same_arch};
use super::error::RemoteError;
use super::probe::Facts;
use super::report::{Reporter, TransferEnd, bytes};
use super::shell::quote;
use super::ssh::{Ssh, last_line};

/// Makes the teal at `facts.teal` identical to `local`, and proves it runs.
pub async fn ensure(
    ssh: &Ssh,
    facts: &Facts,
    local: &LocalBinary,
    reporter: &dyn Reporter,
) -> Result<(), RemoteError> {
    let host = ssh.name();
    if facts.teal_sha256.as_deref() == Some(local.sha256.as_str()) {
        reporter.note(host, &format!("teal at {} is up to date", facts.teal));
        return Ok(());
    }
    if let Some(arch) = local.arch
        && !same_arch(arch, &facts.arch)
    {
        return Err(RemoteError::host(
            host,
            format!(
                "the host is {} but {} is built for {arch}; set [ssh] binary to a teal built for {}",
                facts.arch,
                local.path.display(),
                facts.arch
            ),
        ));
    }
    let why = match facts.teal_sha256.as_deref() {
        None => "not installed",
        Some("") => "cannot compare (no sha256sum there)",
        Some(_) => "a different build",
    };
    reporter.note(
        host,
        &format!(
            "installing teal at {} ({why}), {}",
            facts.teal,
            bytes(local.size)
        ),
    );
    let file = tokio::fs::File::open(&local.path)
        .await
        .map_err(|e| RemoteError::host(host, format!("reading {}: {e}", local.path.display())))?;
    let started = Instant::now();
    let progress = reporter.transfer(host, "teal", Some(local.size));
    let out = ssh
        .feed(&upload_script(&facts.teal, &local.sha256), file, |n| {
            progress.sent(n)
        })
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            progress.finish(&TransferEnd::Failed);
            return Err(e);
        }
    };
    if out.status.success() {
        progress.finish(&TransferEnd::Done {
            sent: local.size,
            raw: None,
            elapsed: started.elapsed(),
        });
        return Ok(());
    }
    progress.finish(&TransferEnd::Failed);
    if out.status.code() == Some(CANNOT_RUN) {
        return Err(cannot_run(ssh, facts, local, &out));
    }
    Err(RemoteError::host(
        host,
        format!(
            "uploading teal to {} failed: {}",
            facts.teal,
            last_line(&out)
        ),
    ))
}

/// The new teal did not run there: say why, and what to do.
fn cannot_run(
    ssh: &Ssh,
    facts: &Facts,
    local: &LocalBinary,
    out: &std::process::Output,
) -> RemoteError {
    let hint = if local.dynamic {
        format!(
            "; {} is dynamically linked against this machine's libc: build a static teal (RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target {}-unknown-linux-gnu) and set [ssh] binary to it",
            local.path.display(),
            facts.arch
        )
    } else {
        String::new()
    };
    RemoteError::host(
        ssh.name(),
        format!(
            "{} cannot run there ({}), so it was not installed at {}{hint}",
            local.path.display(),
            last_line(out),
            facts.teal,
        ),
    )
}

/// The upload script's exit status when the new binary does not run there.
const CANNOT_RUN: i32 = 86;

/// Receives the binary on stdin into a temp file next to its place, checks it
/// arrived whole and runs there, and only then renames it into place (a
/// running daemon keeps its copy; a teal that cannot run never replaces one).
fn upload_script(teal: &str, sha256: &str) -> String {
    format!(
        r#"set -e
teal={teal}
mkdir -p "$(dirname "$teal")"
tmp="$teal.upload-$$"
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
if command -v sha256sum >/dev/null 2>&1; then
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  [ "$got" = {sha} ] || {{ echo "the upload arrived damaged (sha256 $got)" >&2; exit 1; }}
fi
chmod 755 "$tmp"
"$tmp" --version >/dev/null 2>"$tmp.err" || {{ tail -n 3 "$tmp.err" >&2; rm -f "$tmp.err"; exit {CANNOT_RUN}; }}
rm -f "$tmp.err"
mv -f "$tmp" "$teal"
"#,
        teal = quote(teal),
        sha = quote(sha256),
    )
}
