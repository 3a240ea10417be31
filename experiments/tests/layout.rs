//! The layout rule of the `experiments` crate (docs/architecture.md, issue 18): the command line sits on
//! top; `reproduce`, `runs`, `report` and `common` never import `cli`, and `report` and `common` import
//! neither `runs` nor `reproduce`. Checked on the source text, so a new file is covered without a list.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn lower_modules_never_import_the_ones_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: [(&str, &[&str]); 4] = [
        ("reproduce", &["crate::cli"]),
        ("runs", &["crate::cli", "crate::reproduce"]),
        ("report", &["crate::cli", "crate::reproduce", "crate::runs"]),
        (
            "common.rs",
            &["crate::cli", "crate::reproduce", "crate::runs"],
        ),
    ];
    let mut checked = 0;
    for (module, forbidden) in rules {
        let path = src.join(module);
        let files = if path.is_dir() {
            rust_files(&path)
        } else {
            vec![path]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for f in forbidden {
                assert!(
                    !text.contains(f),
                    "{} uses `{f}`: {module} must not depend on it",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} files checked");
}
