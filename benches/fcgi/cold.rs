//! The C program that the cold-start scenario measures against, built on
//! demand with the system's C compiler.

use std::path::PathBuf;
use std::process::Command;

/// The path of the built program, or `None` when no C compiler works.
pub(super) fn c_server() -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fcgi/cold.c");
    let out = std::env::temp_dir().join(format!("fcgi-bench-cold-{}", std::process::id()));
    let built = Command::new(std::env::var_os("CC").unwrap_or("cc".into()))
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    built.then_some(out)
}
