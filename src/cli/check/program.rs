//! Finding a service's program as the process runtime will start it
//! ([`crate::spec::program_path`]: a path with a directory part relative to
//! the workdir), a bare name in `PATH` (the service's own `PATH` from `env`
//! when it sets one).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where `program` is, or what is wrong with it, in words for the user.
pub(super) fn find(
    program: &Path,
    workdir: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<PathBuf, String> {
    let bare = program.is_relative() && program.components().count() <= 1;
    if !bare {
        let path = crate::spec::program_path(program, workdir);
        return match executable(&path) {
            Some(true) => Ok(path),
            Some(false) => Err(format!(
                "{} is not executable (chmod +x it, or name its interpreter first in command)",
                path.display()
            )),
            None => Err(format!("{}: no such file", path.display())),
        };
    }
    let from_env = std::env::var_os("PATH");
    let search = path_var.or(from_env.as_deref()).unwrap_or_default();
    if let Some(found) = std::env::split_paths(search)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate) == Some(true))
    {
        return Ok(found);
    }
    let mut why = format!(
        "{} is not in any directory of PATH ({})",
        program.display(),
        search.to_string_lossy()
    );
    if let Some(dir) = workdir
        && dir.join(program).is_file()
    {
        why.push_str(&format!(
            "; it is in {}: write \"./{}\" in command",
            dir.display(),
            program.display()
        ));
    }
    Err(why)
}

/// Some(true) for an executable file, Some(false) for another file, None when
/// there is no file.
fn executable(path: &Path) -> Option<bool> {
    let meta = std::fs::metadata(path).ok()?;
    Some(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_in_path_and_paths_in_the_workdir() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let app = bin.join("app");
        std::fs::write(&app, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("notes.txt");
        std::fs::write(&plain, "").unwrap();

        let path_var = Some(bin.as_os_str());
        assert_eq!(find(Path::new("app"), None, path_var), Ok(app.clone()));
        assert_eq!(
            find(Path::new("bin/app"), Some(dir.path()), None),
            Ok(app.clone())
        );
        let missing = find(Path::new("gunicorn"), None, path_var).unwrap_err();
        assert!(
            missing.contains("gunicorn is not in any directory of PATH"),
            "{missing}"
        );
        let here = find(Path::new("notes.txt"), Some(dir.path()), path_var).unwrap_err();
        assert!(here.contains("write \"./notes.txt\""), "{here}");
        let not_exec = find(Path::new("./notes.txt"), Some(dir.path()), None).unwrap_err();
        assert!(not_exec.contains("is not executable"), "{not_exec}");
        let gone = find(Path::new("./gone"), Some(dir.path()), None).unwrap_err();
        assert!(gone.ends_with("gone: no such file"), "{gone}");
    }
}
