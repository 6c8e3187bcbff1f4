//! `completions/` and `man/` are generated from the CLI definition and
//! committed; this test fails when they are stale. Regenerate with
//! `RTMPTOOL_UPDATE_GENERATED=1 cargo test --test generated` (or scripts/gen.sh).

use std::path::Path;
use std::process::Command;

const SHELLS: [(&str, &str); 5] = [
    ("bash", "rtmptool.bash"),
    ("zsh", "_rtmptool"),
    ("fish", "rtmptool.fish"),
    ("elvish", "rtmptool.elv"),
    ("powershell", "_rtmptool.ps1"),
];

fn update() -> bool {
    std::env::var_os("RTMPTOOL_UPDATE_GENERATED").is_some()
}

fn check(path: &Path, fresh: &[u8]) {
    if update() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, fresh).unwrap();
        return;
    }
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: run scripts/gen.sh (RTMPTOOL_UPDATE_GENERATED=1 cargo test --test generated)",
        path.display()
    );
}

#[test]
fn completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in SHELLS {
        let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "completions {shell}: {out:?}");
        assert!(!out.stdout.is_empty());
        check(&root.join("completions").join(file), &out.stdout);
    }
}

#[test]
fn man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "man: {out:?}");
    let mut fresh: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fresh.sort();
    // One page for rtmptool and one per command (completions, man, ...).
    assert!(fresh.len() >= 3, "{fresh:?}");
    assert!(fresh.iter().any(|p| p.ends_with("rtmptool-completions.1")));
    let mut names = Vec::new();
    for p in &fresh {
        let name = p.file_name().unwrap();
        names.push(name.to_owned());
        check(&root.join("man").join(name), &std::fs::read(p).unwrap());
    }
    // No page is left over from a command that no longer exists.
    if !update() {
        for e in std::fs::read_dir(root.join("man")).unwrap() {
            let name = e.unwrap().file_name();
            assert!(
                names.contains(&name),
                "man/{name:?} has no command: run scripts/gen.sh"
            );
        }
    } else {
        for e in std::fs::read_dir(root.join("man")).unwrap() {
            let e = e.unwrap();
            if !names.contains(&e.file_name()) {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }
}

#[test]
fn man_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let man = |force: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rtmptool"));
        c.arg("man").arg(dir.path());
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert!(man(false).status.success());
    let again = man(false);
    assert!(!again.status.success());
    let e = String::from_utf8_lossy(&again.stderr);
    assert!(e.contains("--force") && e.lines().count() == 1, "{e}");
    assert!(man(true).status.success());
}
