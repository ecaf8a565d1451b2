//! Generates `include/pmap.h` from the Rust sources with cbindgen.
//!
//! The header is committed. The build writes the fresh copy to `OUT_DIR/pmap.h` and
//! refreshes `include/pmap.h` when they differ (with a warning to commit it); the test
//! `header_is_fresh` and CI's `git diff --exit-code include/` catch a stale commit.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let part = |name: &str| env::var(name).expect("cargo sets the version parts");
    config.after_includes = Some(format!(
        "\n/** Version of this header; compare with pmap_version() at run time. */\n\
         #define PMAP_VERSION_MAJOR {}\n#define PMAP_VERSION_MINOR {}\n#define PMAP_VERSION_PATCH {}\n\
         #define PMAP_VERSION_STRING \"{version}\"\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    ));

    let generated = out_dir.join("pmap.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate pmap.h")
        .write_to_file(&generated);

    let fresh = fs::read(&generated).expect("the generated header is readable");
    let committed_path = crate_dir.join("include").join("pmap.h");
    if fs::read(&committed_path).ok().as_deref() != Some(fresh.as_slice()) {
        fs::create_dir_all(committed_path.parent().expect("include/ has a parent"))
            .expect("include/ can be created");
        fs::write(&committed_path, &fresh).expect("include/pmap.h is writable");
        println!("cargo:warning=include/pmap.h was regenerated; commit it");
    }
    println!("cargo:include={}", crate_dir.join("include").display());
    println!(
        "cargo:rustc-env=PMAP_GENERATED_HEADER={}",
        generated.display()
    );
}
