//! Who a managed nginx's worker processes run as, and where they write their
//! temporary files (request bodies and responses nginx buffers to disk).
//!
//! A teal that does not run as root starts nginx as itself: the workers are
//! that user and write under `state_dir/nginx/tmp`. A teal that runs as root
//! must not give the internet a root process to talk to: the workers run as
//! `nobody` (and its group), as Debian's own nginx runs them as `www-data`.
//! Those workers must be able to reach their temp dirs: `state_dir/nginx/tmp`
//! when every directory above it lets others through (`o+x`), otherwise a
//! directory of their own under `/var/cache/teal-nginx/` named after the state
//! dir (a state dir under `/root`, mode 0700, is the usual case). Only the
//! temp dirs belong to `nobody`; the config, pid file and error log stay
//! root's (the master opens them).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User, chown, geteuid};

/// The unprivileged user a root teal runs nginx workers as.
const WORKER_USER: &str = "nobody";

/// Where root's nginx workers keep temp files when the state dir is closed to them.
const SHARED_TEMP_ROOT: &str = "/var/cache/teal-nginx";

/// The temp dirs nginx's `*_temp_path` directives name.
const TEMP_DIRS: [&str; 5] = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"];

/// The workers' identity and temp root for one managed nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAccount {
    /// The `user` directive's value (`NAME GROUP`); None: the user teal runs as.
    pub user: Option<String>,
    /// The directory holding the temp dirs.
    pub temp: PathBuf,
}

/// Prepares the temp dirs for the workers of the nginx managed in `dir`
/// (`state_dir/nginx`) and says who they run as.
pub fn prepare(dir: &Path) -> io::Result<WorkerAccount> {
    let own_temp = dir.join("tmp");
    if !geteuid().is_root() {
        create_temp_dirs(&own_temp, None)?;
        return Ok(WorkerAccount {
            user: None,
            temp: own_temp,
        });
    }
    let Some((user, uid, gid)) = worker_user() else {
        // No such user: nginx itself would fail to start with `user nobody`.
        tracing::warn!(
            "no user `{WORKER_USER}` on this machine: the managed nginx's workers run as root"
        );
        create_temp_dirs(&own_temp, None)?;
        return Ok(WorkerAccount {
            user: Some("root".into()),
            temp: own_temp,
        });
    };
    let temp = if ancestors_passable(dir)? {
        // Others may pass through `dir` (not list or read it) to reach `tmp`.
        let mode = fs::metadata(dir)?.mode() & 0o7777;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o011))?;
        own_temp
    } else {
        let root = Path::new(SHARED_TEMP_ROOT);
        fs::create_dir_all(root)?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        root.join(temp_name(dir))
    };
    create_temp_dirs(&temp, Some((uid, gid)))?;
    Ok(WorkerAccount {
        user: Some(user),
        temp,
    })
}

/// A directory of teal's own whose files nginx's workers serve (ACME
/// challenges): `dir/NAME`, unless `others` (the workers run as another user:
/// a root teal's managed workers, or a system nginx's) cannot pass through
/// the directories above `dir`; then, for a root teal, a directory of its own
/// under `/var/cache/teal-nginx/` named after the state dir. Made readable by
/// all when `others` (what it holds is served to anyone anyway).
pub fn served_dir(dir: &Path, name: &str, others: bool) -> io::Result<PathBuf> {
    let own = dir.join(name);
    let path = if !others {
        own
    } else if ancestors_passable(dir)? {
        let mode = fs::metadata(dir)?.mode() & 0o7777;
        if mode & 0o011 != 0o011 {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o011))?;
        }
        own
    } else if geteuid().is_root() {
        let root = Path::new(SHARED_TEMP_ROOT);
        fs::create_dir_all(root)?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        root.join(format!("{}.{name}", temp_name(dir)))
    } else {
        tracing::warn!(
            dir = %dir.display(),
            "nginx's workers may not reach {name} files here: a directory above the state dir is closed to other users"
        );
        own
    };
    fs::create_dir_all(&path)?;
    if others {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    Ok(path)
}

/// Removes a [`served_dir`] kept outside the state dir once its nginx no
/// longer serves it (the next start makes it again).
pub fn forget_served(path: &Path) {
    if path.starts_with(SHARED_TEMP_ROOT) {
        let _ = fs::remove_dir_all(path);
    }
}

/// Removes temp dirs kept outside the state dir once their nginx has stopped
/// (the next start makes them again); the state dir's own stay.
pub fn forget(account: &WorkerAccount) {
    if account.temp.starts_with(SHARED_TEMP_ROOT) {
        let _ = fs::remove_dir_all(&account.temp);
    }
}

/// `NAME GROUP` of the worker user, with its ids.
fn worker_user() -> Option<(String, Uid, Gid)> {
    let user = User::from_name(WORKER_USER).ok().flatten()?;
    let group = Group::from_gid(user.gid).ok().flatten()?;
    Some((format!("{} {}", user.name, group.name), user.uid, user.gid))
}

/// Creates `temp` and its sub dirs; with an owner, gives them to it (mode 0700),
/// `temp` itself staying root's, passable but not listable.
fn create_temp_dirs(temp: &Path, owner: Option<(Uid, Gid)>) -> io::Result<()> {
    for sub in TEMP_DIRS {
        let path = temp.join(sub);
        fs::create_dir_all(&path)?;
        if let Some((uid, gid)) = owner {
            chown(&path, Some(uid), Some(gid))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
        }
    }
    if owner.is_some() {
        fs::set_permissions(temp, fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Whether a user other than the owner can pass through every directory from
/// `/` down to `dir`'s parent (`dir` is teal's own, which it opens itself).
fn ancestors_passable(dir: &Path) -> io::Result<bool> {
    let dir = dir.canonicalize()?;
    for ancestor in dir.ancestors().skip(1) {
        if fs::metadata(ancestor)?.mode() & 0o001 == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A directory name that says which state dir it serves: the path with its
/// separators turned into `-` (`/root/app/.teal/nginx` → `root-app-.teal-nginx`).
fn temp_name(dir: &Path) -> String {
    let path = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let name: String = path
        .to_string_lossy()
        .trim_start_matches('/')
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .collect();
    if name.is_empty() { "root".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_say_which_state_dir() {
        assert_eq!(
            temp_name(Path::new("/nonexistent/app/.teal/nginx")),
            "nonexistent-app-.teal-nginx"
        );
    }
}
