//! The names of the profiles that hold a login, so that `status` can list them without
//! asking anyone: one name a line in `profiles` in the cache directory (0600). Cache entries
//! are named by a hash that cannot be turned back into a profile name, hence this list. It
//! holds names only, never a token; losing it loses nothing but the listing.

use std::path::PathBuf;

use en_core_auth::config::Settings;
use en_core_auth::store::FileStore;

fn path(settings: &Settings) -> Option<PathBuf> {
    let dir = match settings.cache_dir() {
        Some(dir) => dir.to_path_buf(),
        None => FileStore::default_dir().ok()?,
    };
    Some(dir.join("profiles"))
}

/// Every profile name known, `default` first.
pub(crate) fn known(settings: &Settings) -> Vec<String> {
    let mut names = vec!["default".to_owned()];
    let listed = path(settings)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    for name in listed.lines().map(str::trim) {
        // Names that do not make a valid profile (a hand-edited file) are skipped.
        if settings.clone().with_profile(name).is_ok() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Adds this profile to the list (after a login).
pub(crate) fn remember(settings: &Settings) {
    let mut names = known(settings);
    if !names.iter().any(|name| name == settings.profile()) {
        names.push(settings.profile().to_owned());
    }
    write(settings, &names);
}

/// Takes this profile off the list (after a logout).
pub(crate) fn forget(settings: &Settings) {
    let names: Vec<String> = known(settings)
        .into_iter()
        .filter(|name| name != settings.profile())
        .collect();
    write(settings, &names);
}

/// Writes the list atomically (a temporary file renamed), mode 0600; a failure only loses
/// the listing, so it is logged, not reported.
fn write(settings: &Settings, names: &[String]) {
    let Some(path) = path(settings) else {
        return;
    };
    let text: String = names
        .iter()
        .filter(|name| *name != "default")
        .map(|name| format!("{name}\n"))
        .collect();
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&temporary)?, text.as_bytes())?;
        std::fs::rename(&temporary, &path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        log::debug!("could not update the list of profiles: {error}");
    }
}
