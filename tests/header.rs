//! The committed header is what the sources generate, its version macros match
//! Cargo.toml and the library, and it compiles standalone as C11 and C++17.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pmap.h")
}

#[test]
fn header_is_fresh() {
    let generated = std::fs::read_to_string(env!("PMAP_GENERATED_HEADER")).unwrap();
    let committed = std::fs::read_to_string(committed()).unwrap();
    assert!(
        generated == committed,
        "include/pmap.h is stale: run `cargo build` and commit include/pmap.h"
    );
}

fn macro_value(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} missing from the header"))
        .trim()
        .to_string()
}

#[test]
fn version_macros_match_cargo_and_the_library() {
    let header = std::fs::read_to_string(committed()).unwrap();
    assert_eq!(
        macro_value(&header, "PMAP_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        macro_value(&header, "PMAP_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        macro_value(&header, "PMAP_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    let string = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(macro_value(&header, "PMAP_VERSION_STRING"), string);
    // SAFETY: pmap_version returns a static NUL-terminated string.
    let lib = unsafe { CStr::from_ptr(pmap::ffi::api::pmap_version()) };
    assert_eq!(lib.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// Compile a file that only includes the header, with every warning an error.
fn compiles_standalone(compiler: &str, lang: &str, std: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("pmap-header-{lang}-{}.o", std::process::id()));
    let status = Command::new(compiler)
        .args([
            "-x",
            lang,
            &format!("-std={std}"),
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .arg("-I")
        .arg(dir.join("include"))
        .args(["-c", "-o"])
        .arg(&out)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(
                b"#include <pmap.h>\n#include <pmap.h>\nint main(void) { return PMAP_OK; }\n",
            )?;
            child.wait()
        })
        .unwrap_or_else(|e| panic!("could not run {compiler}: {e}"));
    let _ = std::fs::remove_file(&out);
    assert!(
        status.success(),
        "pmap.h does not compile standalone as {lang} {std}"
    );
}

#[test]
fn header_compiles_as_c11() {
    compiles_standalone("cc", "c", "c11");
}

#[test]
fn header_compiles_as_cxx17() {
    compiles_standalone("c++", "c++", "c++17");
}
