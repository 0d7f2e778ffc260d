//! What every command in `teal.toml` is checked for, a service's `command`
//! (process and docker) and the hooks alike: `{placeholders}` teal knows, and,
//! for a service's command, no `$VARIABLE` that no shell will ever expand.
//!
//! teal runs a command as a program and its arguments, with no shell in
//! between (docker's exec form does the same), so `"$PORT"` would reach the app
//! as those five characters; such a command is an error with the fix in its
//! words, unless the program is itself a shell (`["sh", "-c", "..."]`), whose
//! script expands it.

use toml::Spanned;

use super::invalid::Invalid;
use crate::spec::COMMAND_PLACEHOLDERS;

/// Shells whose arguments are scripts: `$NAME` in them is the shell's business.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ash", "ksh", "busybox"];

/// Checks a service's `command` (`what`, e.g. `services.web.command`).
pub(super) fn service_command(command: &Spanned<Vec<String>>, what: &str) -> Result<(), Invalid> {
    if let Some(message) = placeholders(command.get_ref(), what, COMMAND_PLACEHOLDERS) {
        return Err(Invalid::at(command, message));
    }
    if is_shell(command.get_ref()) {
        return Ok(());
    }
    for arg in command.get_ref() {
        if let Some(name) = variable(arg) {
            return Err(Invalid::at(
                command,
                format!(
                    "{what} has {arg:?}, but teal runs the command without a shell, so ${name} would reach the app as it is written: use {}, or run it through [\"sh\", \"-c\", \"...\"]",
                    if name == "PORT" {
                        "{port}".to_string()
                    } else {
                        format!("a placeholder ({})", listed(COMMAND_PLACEHOLDERS))
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The error for the first `{name}` in `command` that `known` does not hold.
pub(super) fn placeholders(command: &[String], what: &str, known: &[&str]) -> Option<String> {
    let unknown = command
        .iter()
        .find_map(|arg| unknown_placeholder(arg, known))?;
    Some(format!(
        "unknown placeholder {{{unknown}}} in {what}; known: {}",
        listed(known)
    ))
}

fn listed(known: &[&str]) -> String {
    known
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first `{name}` in `arg` whose name is an identifier not in `known`.
/// Braces around anything else (JSON, shell) are left alone.
fn unknown_placeholder<'a>(arg: &'a str, known: &[&str]) -> Option<&'a str> {
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        let identifier = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if identifier && !known.contains(&name) {
            return Some(name);
        }
        rest = after;
    }
    None
}

/// Whether the program is a shell (by its file name: `sh`, `/bin/bash` ...).
fn is_shell(command: &[String]) -> bool {
    command.first().is_some_and(|program| {
        let name = program.rsplit('/').next().unwrap_or(program);
        SHELLS.contains(&name)
    })
}

/// The first environment variable `arg` refers to the shell's way: `$NAME` or
/// `${NAME}`, NAME in capitals as environment variables are named (a lowercase
/// `$word` is left alone: it may be part of a password or a pattern).
fn variable(arg: &str) -> Option<&str> {
    let mut rest = arg;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar + 1..];
        let (body, braced) = match after.strip_prefix('{') {
            Some(inner) => (inner, true),
            None => (after, false),
        };
        let len = body
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(body.len());
        let name = &body[..len];
        let starts_well = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
        let closed = !braced || body[len..].starts_with('}');
        if starts_well && closed {
            return Some(name);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests;
