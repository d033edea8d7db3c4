//! Architecture checks that run with `cargo test`: the dependency edges ARCHITECTURE.md
//! promises, and a `//!` header on every Rust file.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Names of the normal (non-dev) dependencies of a crate, read from its Cargo.toml.
fn dependencies(crate_name: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(
        workspace_root()
            .join("crates")
            .join(crate_name)
            .join("Cargo.toml"),
    )
    .unwrap_or_else(|e| panic!("read {crate_name}/Cargo.toml: {e}"));
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                deps.push(name.trim().to_owned());
            }
        }
    }
    deps
}

fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("crates"))
        .expect("read crates/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn core_depends_on_no_runtime_and_no_other_nova_crate() {
    for dep in dependencies("nova-core") {
        assert!(!dep.starts_with("nova-"), "nova-core depends on {dep}");
        assert!(
            !["tokio", "sqlx", "axum", "async-graphql"].contains(&dep.as_str()),
            "nova-core depends on {dep}"
        );
    }
}

#[test]
fn domains_do_no_io_through_adapters() {
    for domain in [
        "nova-users",
        "nova-posts",
        "nova-notifications",
        "nova-messaging",
        "nova-events",
    ] {
        for dep in dependencies(domain) {
            assert!(
                ![
                    "sqlx",
                    "axum",
                    "async-graphql",
                    "redis",
                    "rdkafka",
                    "nova-db",
                    "nova-graphql",
                    "nova-gateway"
                ]
                .contains(&dep.as_str()),
                "{domain} depends on {dep}"
            );
        }
    }
}

#[test]
fn only_the_composition_roots_name_storage_adapters() {
    for name in crates() {
        let allowed = ["nova-app", "nova-bench"].contains(&name.as_str());
        if !allowed {
            assert!(
                !dependencies(&name).contains(&"nova-db".to_owned()),
                "{name} depends on nova-db"
            );
        }
    }
    assert!(
        !dependencies("nova-graphql").contains(&"axum".to_owned()),
        "nova-graphql depends on axum"
    );
    assert!(
        !dependencies("nova-gateway").contains(&"sqlx".to_owned()),
        "nova-gateway depends on sqlx"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_comment() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    assert!(!files.is_empty());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! header: {missing:?}"
    );
}
