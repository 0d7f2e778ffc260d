//! `[services.NAME.hooks]` and `[services.NAME.verify]` → [`HooksSpec`] and
//! [`VerifySpec`]: commands, placeholders, time limits and thresholds checked, each
//! error pointing at its value.

use std::time::Duration;

use toml::Spanned;

use super::invalid::Invalid;
use super::raw::{RawHook, RawHooks, RawVerify};
use super::values;
use crate::spec::{
    DEFAULT_HOOK_TIMEOUT, HOOK_PLACEHOLDERS, HookPlace, HookPoint, HookSpec, HooksSpec,
    Inconclusive, RuntimeSpec, VerifySpec,
};

/// The hooks of `section` (`services.NAME`), for a service run by `runtime`.
pub(super) fn hooks(
    raw: RawHooks,
    section: &str,
    runtime: &RuntimeSpec,
) -> Result<HooksSpec, Invalid> {
    let what = |key: &str| format!("{section}.hooks.{key}");
    let timeout = match &raw.timeout {
        Some(value) => values::duration(value, &what("timeout"), false)?,
        None => DEFAULT_HOOK_TIMEOUT,
    };
    let run_in = match &raw.run_in {
        Some(value) => place(value, &what("run_in"), runtime)?,
        None => HookPlace::Host,
    };
    let mut spec = HooksSpec {
        rollback_on_failure: raw.rollback_on_failure.unwrap_or(false),
        ..HooksSpec::default()
    };
    let raws = [
        (HookPoint::PreDeploy, raw.pre_deploy),
        (HookPoint::PreSwitch, raw.pre_switch),
        (HookPoint::PostSwitch, raw.post_switch),
        (HookPoint::PostRetire, raw.post_retire),
    ];
    for (point, value) in raws {
        if let Some(value) = value {
            let hook = hook(value, &what(point.as_str()), timeout, run_in, runtime)?;
            *spec.get_mut(point) = Some(hook);
        }
    }
    Ok(spec)
}

fn hook(
    value: Spanned<RawHook>,
    what: &str,
    timeout: Duration,
    run_in: HookPlace,
    runtime: &RuntimeSpec,
) -> Result<HookSpec, Invalid> {
    let span = value.span();
    let at = |message: String| Invalid {
        span: Some(span.clone()),
        message,
    };
    let (command, timeout, run_in) = match value.into_inner() {
        RawHook::Command(command) => (command, timeout, run_in),
        RawHook::Table(table) => {
            let Some(command) = table.command else {
                return Err(at(format!(
                    "{what} has no command, e.g. {{ command = [\"./bin/migrate\", \"expand\"] }}"
                )));
            };
            let timeout = match &table.timeout {
                Some(value) => values::duration(value, &format!("{what}.timeout"), false)?,
                None => timeout,
            };
            let run_in = match &table.run_in {
                Some(value) => place(value, &format!("{what}.run_in"), runtime)?,
                None => run_in,
            };
            (command.into_inner(), timeout, run_in)
        }
    };
    match command.first() {
        None => {
            return Err(at(format!(
                "{what} is empty; give the program and its arguments"
            )));
        }
        Some(program) if program.trim().is_empty() => {
            return Err(at(format!("{what} starts with an empty program name")));
        }
        Some(_) => {}
    }
    if let Some(message) = super::command::placeholders(&command, what, HOOK_PLACEHOLDERS) {
        return Err(at(message));
    }
    Ok(HookSpec {
        command,
        timeout,
        run_in,
    })
}

/// `run_in`: "host", or "image" for a service that runs on docker.
fn place(value: &Spanned<String>, what: &str, runtime: &RuntimeSpec) -> Result<HookPlace, Invalid> {
    match value.get_ref().as_str() {
        "host" => Ok(HookPlace::Host),
        "image" => match runtime {
            // The docker runtime runs them as one-off containers of the new image
            // (`Runtime::run_hook`); processes have no image to run in.
            RuntimeSpec::Docker(_) => Ok(HookPlace::Image),
            RuntimeSpec::Process { .. } => Err(Invalid::at(
                value,
                format!(
                    "{what} = \"image\" runs the hook in the new version's image, which needs runtime = \"docker\"; this service uses the process runtime (use \"host\")"
                ),
            )),
        },
        other => Err(Invalid::at(
            value,
            format!("unknown {what} {other:?}; expected \"host\" or \"image\""),
        )),
    }
}

/// `[services.NAME.verify]`.
pub(super) fn verify(raw: RawVerify, section: &str) -> Result<VerifySpec, Invalid> {
    let defaults = VerifySpec::default();
    let what = |key: &str| format!("{section}.verify.{key}");
    let window = match &raw.window {
        Some(value) => values::duration(value, &what("window"), false)?,
        None => defaults.window,
    };
    let max_error_rate = match &raw.max_error_rate {
        Some(value) => {
            let rate = *value.get_ref();
            if !(0.0..=1.0).contains(&rate) {
                return Err(Invalid::at(
                    value,
                    format!(
                        "{} must be a share between 0 and 1, e.g. 0.01 for 1% (got {rate})",
                        what("max_error_rate")
                    ),
                ));
            }
            rate
        }
        None => defaults.max_error_rate,
    };
    let max_p99 = match &raw.max_p99 {
        Some(value) => Some(values::duration(value, &what("max_p99"), false)?),
        None => None,
    };
    let min_requests = match &raw.min_requests {
        Some(value) if *value.get_ref() >= 0 => *value.get_ref() as u64,
        Some(value) => {
            return Err(Invalid::at(
                value,
                format!(
                    "{} must be zero or more (got {})",
                    what("min_requests"),
                    value.get_ref()
                ),
            ));
        }
        None => defaults.min_requests,
    };
    let on_inconclusive = match &raw.on_inconclusive {
        None => defaults.on_inconclusive,
        Some(value) => match value.get_ref().as_str() {
            "promote" => Inconclusive::Promote,
            "fail" => Inconclusive::Fail,
            other => {
                return Err(Invalid::at(
                    value,
                    format!(
                        "unknown {} {other:?}; expected \"promote\" or \"fail\"",
                        what("on_inconclusive")
                    ),
                ));
            }
        },
    };
    Ok(VerifySpec {
        window,
        max_error_rate,
        max_p99,
        min_requests,
        on_inconclusive,
    })
}

#[cfg(test)]
mod tests;
