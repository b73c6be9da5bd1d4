//! Says, in one line on standard error, which test files a `cargo test` left out because
//! their features were not enabled: most of the suite needs `testing` (the local identity
//! provider), and without `--all-features` its files compile to nothing, silently.
//!
//! Built without any feature, so that it runs in exactly the builds that leave files out.
//! What each file needs is read from the files themselves (`#![cfg(feature = …)]`) and from
//! the manifest (`required-features`), so that this list cannot go stale.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

/// The crate's features, and whether this build has each.
const FEATURES: [(&str, bool); 6] = [
    ("jwt", cfg!(feature = "jwt")),
    ("testing", cfg!(feature = "testing")),
    ("redis", cfg!(feature = "redis")),
    ("cli", cfg!(feature = "cli")),
    ("tracing", cfg!(feature = "tracing")),
    ("keyring", cfg!(feature = "keyring")),
];

/// Every `feature = "…"` named in `text`.
fn features_named(text: &str) -> BTreeSet<String> {
    text.split("feature = \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_owned()))
        .collect()
}

/// The features each test file needs: its inner `#![cfg(...)]` attributes, and its
/// `[[test]]` entry's `required-features` in the manifest.
fn needs() -> Vec<(String, BTreeSet<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut needed: BTreeSet<String> = text
                .lines()
                .filter(|line| line.starts_with("#![cfg("))
                .flat_map(features_named)
                .collect();
            // `[[test]]` sections: name, then (maybe) required-features, before the next one.
            for section in manifest.split("[[test]]").skip(1) {
                let section = section.split("\n[").next().unwrap_or_default();
                if section.contains(&format!("name = \"{name}\"")) {
                    needed.extend(
                        section
                            .lines()
                            .filter(|line| line.starts_with("required-features"))
                            .flat_map(|line| {
                                line.split('"')
                                    .skip(1)
                                    .step_by(2)
                                    .map(str::to_owned)
                                    .collect::<Vec<_>>()
                            }),
                    );
                }
            }
            (format!("tests/{name}.rs"), needed)
        })
        .collect()
}

#[test]
fn say_which_test_files_were_left_out_for_missing_features() {
    let enabled: BTreeSet<&str> = FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    let all = needs();
    // Every feature a file names is one this test knows, so that none is overlooked.
    for (file, needed) in &all {
        for feature in needed {
            assert!(
                FEATURES.iter().any(|(name, _)| name == feature),
                "{file} needs feature `{feature}`, unknown to tests/feature_gates.rs"
            );
        }
    }
    assert!(
        all.iter().any(|(_, needed)| needed.contains("testing")),
        "no test file seems to need `testing`: the parsing above is broken"
    );
    let left_out: Vec<String> = all
        .iter()
        .filter(|(_, needed)| needed.iter().any(|f| !enabled.contains(f.as_str())))
        .map(|(file, needed)| {
            let missing: Vec<&str> = needed
                .iter()
                .map(String::as_str)
                .filter(|f| !enabled.contains(f))
                .collect();
            format!("{file} ({})", missing.join(", "))
        })
        .collect();
    if !left_out.is_empty() {
        // Straight to the process's standard error: the test harness captures only
        // `print!`-style output, and this line must be seen although the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: {} of {} test files were LEFT OUT for missing features (run `cargo test \
             --all-features`, or `bash .ci/test` for everything): {}\n",
            left_out.len(),
            all.len(),
            left_out.join(", ")
        );
    }
    if FEATURES.iter().all(|(_, on)| *on) {
        assert!(left_out.is_empty(), "{left_out:?}");
    }
}
