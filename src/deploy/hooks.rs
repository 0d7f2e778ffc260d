//! A service's hooks at their moments of a deploy: the environment they see, their
//! output streamed as progress, their result in the timeline.
//!
//! What a failure means is the caller's business (`flow.rs`, `switch.rs`): before
//! the switch it aborts the deploy, after it it is recorded or, with
//! `rollback_on_failure`, switches production back. Running the command is
//! `crate::hooks` (on the host) or the runtime (`run_in = "image"`).

use std::net::SocketAddr;

use super::DeployError;
use super::context::ActionContext;
use crate::hooks::{self, HookEnv, HookRequest, Output};
use crate::spec::{HookPlace, HookPoint};
use crate::wire::Step;

impl ActionContext<'_> {
    /// What the hooks of the attempt see (`TEAL_*` and placeholders).
    fn hook_env(&self) -> HookEnv {
        let (spec, attempt) = (self.spec, &self.attempt);
        let preview = match spec.preview {
            Some(_) => self.router.preview_addr(&spec.name),
            None => self
                .service
                .running(attempt.slot)
                .and_then(|r| r.instances.first().map(|i| i.addr())),
        };
        HookEnv {
            service: spec.name.clone(),
            version: attempt.version.clone(),
            previous_version: attempt.from_version.clone(),
            slot: attempt.slot,
            preview_url: preview.map(url),
            production_url: self.router.listen_addrs().first().copied().map(url),
        }
    }

    /// Runs `point`'s hook when the spec has one, as its own step. Its output
    /// goes to the progress as it comes; the step is marked failed on error.
    pub(super) async fn run_hook(&self, point: HookPoint) -> Result<(), DeployError> {
        let ActionContext { spec, progress, .. } = *self;
        let attempt = &self.attempt;
        let Some(hook) = spec.hooks.get(point) else {
            return Ok(());
        };
        let env = self.hook_env();
        let mut req = HookRequest::new(point, spec, &hook.command, hook.timeout, &env);
        req.image = attempt.image.as_deref();
        let place = match hook.run_in {
            HookPlace::Host => String::new(),
            HookPlace::Image => format!(" in the image of {}", attempt.version),
        };
        progress.step(
            Step::hook(point),
            format!(
                "running {}{place} (timeout {})",
                shell_line(&req.command),
                humantime::format_duration(hook.timeout)
            ),
        );
        let sink = progress.clone();
        let output = Output::new(move |line| sink.info(format!("{point} | {line}")));
        let result = match hook.run_in {
            HookPlace::Host => {
                hooks::run_on_host(&req, &spec.workdir, &output, self.shutdown).await
            }
            HookPlace::Image => self.runtime.run_hook(&req, &output, self.shutdown).await,
        };
        match result {
            Ok(report) => {
                let note = format!("exit 0 in {:.2}s", report.duration.as_secs_f64());
                progress.info(format!("{point} hook succeeded ({note})"));
                progress.note(note);
                Ok(())
            }
            Err(error) => {
                progress.fail_step(error.to_string());
                Err(DeployError::Hook { point, error })
            }
        }
    }
}

/// `http://ADDR`, with a wildcard address replaced by loopback (what a hook on
/// this host can connect to).
fn url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// A command as a shell would show it (arguments with spaces quoted).
fn shell_line(command: &[String]) -> String {
    command
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_reachable_address() {
        assert_eq!(url("0.0.0.0:80".parse().unwrap()), "http://127.0.0.1:80");
        assert_eq!(url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(
            url("10.0.0.2:8081".parse().unwrap()),
            "http://10.0.0.2:8081"
        );
    }

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let c = ["./bin/smoke".to_string(), "a b".into(), "x".into()];
        assert_eq!(shell_line(&c), "./bin/smoke \"a b\" x");
    }
}
