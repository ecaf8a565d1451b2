//! Builds and runs every C test program in `c-tests/` against the `libpmap.so` that cargo
//! built for this test run, one `#[test]` per program so a failure is reported by name.
//!
//! Each program is compiled with the C compiler the `cc` crate finds (falling back to `cc`
//! on PATH) as `-std=c11 -Wall -Wextra -Werror -pthread`, linked against the freshly built
//! library with an rpath, put under `target/<profile>/c-tests/`, and run with a wall-clock
//! limit. It passes when it exits with status 0.
//!
//! Environment:
//! * `PMAP_C_TEST_CFLAGS`: extra compiler/linker flags, appended (e.g. `-fsanitize=address`).
//! * `PMAP_C_TEST_WRAPPER`: a command to run each program under (e.g.
//!   `valgrind --error-exitcode=1 --leak-check=full`); it also raises the default time limit
//!   to 600 s, sets `PMAP_WATCHDOG_SCALE=10` for the programs' own watchdogs, and sets
//!   `PMAP_C_TEST_WRAPPED=1` (fork.c's child then skips valgrind's exit-time leak check).
//! * `PMAP_C_TEST_TIMEOUT`: the wall-clock limit per program, in seconds (default 60).
//! * `PMAP_C_TEST_SKIP`: comma-separated program names to skip (reported as skipped).

#![cfg(unix)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Every program in `c-tests/`. `every_program_has_a_test` keeps this list honest.
macro_rules! c_tests {
    ($($name:ident),* $(,)?) => {
        const PROGRAMS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_program(stringify!($name));
            }
        )*
    };
}

c_tests!(
    lifecycle,
    ordered,
    unordered,
    errors,
    cancel,
    free_outstanding,
    bounded,
    source,
    bad_input,
    fail_fast,
    worker_state,
    reentrancy,
    fork,
    many_threads,
    batch,
    timeouts,
    signals,
    single_thread_patterns,
    sandbox,
);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: this test binary lives in `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let deps = exe.parent().expect("the test binary is in a directory");
    let profile = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent")
    } else {
        deps
    };
    profile.to_path_buf()
}

/// The directory holding the `libpmap.so` built for this run.
///
/// rustc writes the cdylib to `target/<profile>/deps/`; cargo copies it up to
/// `target/<profile>/` only when the library itself was requested (`cargo build`), so for
/// `cargo test` the copy there may be stale. Prefer `deps/`.
fn lib_dir() -> PathBuf {
    let profile = profile_dir();
    let lib = format!(
        "{}pmap{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    for dir in [profile.join("deps"), profile.clone()] {
        if dir.join(&lib).is_file() {
            return dir;
        }
    }
    panic!(
        "{lib} not found in {}/deps or {}; the crate must be built as a cdylib",
        profile.display(),
        profile.display()
    );
}

/// The target triple this test binary was built for (the `cc` crate wants one; at test
/// run time cargo does not set `TARGET`).
fn target_triple() -> String {
    let arch = std::env::consts::ARCH;
    let env = if cfg!(target_env = "musl") {
        "musl"
    } else {
        "gnu"
    };
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-{env}"),
        "macos" => format!("{arch}-apple-darwin"),
        "freebsd" => format!("{arch}-unknown-freebsd"),
        os => format!("{arch}-unknown-{os}"),
    }
}

/// The C compiler, as the `cc` crate finds it (honouring `CC`), else `cc` from PATH.
fn compiler() -> Command {
    let triple = target_triple();
    let found = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .emit_rerun_if_env_changed(false)
        .opt_level(2)
        .debug(true)
        .host(&triple)
        .target(&triple)
        .try_get_compiler();
    match found {
        Ok(tool) => tool.to_command(),
        Err(_) => Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into())),
    }
}

fn env_words(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn compile(name: &str) -> PathBuf {
    let root = manifest_dir();
    let src = root.join("c-tests").join(format!("{name}.c"));
    assert!(src.is_file(), "{} is missing", src.display());
    let out_dir = profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("target/<profile>/c-tests can be created");
    let exe = out_dir.join(name);
    let lib_dir = lib_dir();

    let mut cmd = compiler();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-g"])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("c-tests"))
        .args(env_words("PMAP_C_TEST_CFLAGS"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lpmap");
    let shown = show(&cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run the C compiler ({shown}): {e}"));
    if !output.status.success() {
        panic!(
            "compiling {name}.c failed ({})\ncommand: {shown}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    exe
}

/// A command line for messages (without the environment `cc` may attach).
fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Read a pipe to the end on a thread, so a chatty program never blocks on a full pipe.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Kill the program's whole process group (it may have forked children).
fn kill_group(child: &Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals the process group we created for this
    // child (`process_group(0)`); it touches no memory.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn time_limit(wrapped: bool) -> Duration {
    let secs = std::env::var("PMAP_C_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(if wrapped { 600 } else { 60 });
    Duration::from_secs(secs)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(3), _) => "exit status 3 (its watchdog fired: the program hung)".into(),
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => format!("{status}"),
    }
}

fn run_program(name: &str) {
    let skip = std::env::var("PMAP_C_TEST_SKIP").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == name) {
        println!("{name}: skipped (PMAP_C_TEST_SKIP)");
        return;
    }
    let t0 = Instant::now();
    let exe = compile(name);
    let compile_time = t0.elapsed();

    let wrapper = env_words("PMAP_C_TEST_WRAPPER");
    let wrapped = !wrapper.is_empty();
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    if wrapped {
        // Lets a program adapt where a wrapper changes the rules (fork.c's child).
        cmd.env("PMAP_C_TEST_WRAPPED", "1");
        if std::env::var_os("PMAP_WATCHDOG_SCALE").is_none() {
            cmd.env("PMAP_WATCHDOG_SCALE", "10");
        }
    }
    // cargo puts target/<profile> (whose libpmap.so may be stale, see `lib_dir`) on
    // LD_LIBRARY_PATH for tests, and LD_LIBRARY_PATH beats the rpath: put ours first.
    let mut search =
        std::env::split_paths(&std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default())
            .collect::<Vec<_>>();
    search.insert(0, lib_dir());
    cmd.env(
        "LD_LIBRARY_PATH",
        std::env::join_paths(search).expect("paths without ':'"),
    );
    cmd.current_dir(manifest_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let shown = show(&cmd);
    let limit = time_limit(wrapped);

    let t1 = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {shown}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitpid works") {
            break Some(status);
        }
        if t1.elapsed() > limit {
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // Also reaps stray grandchildren that would keep the pipes open.
    kill_group(&child);
    let status = match status {
        Some(s) => Some(s),
        None => {
            let _ = child.wait();
            None
        }
    };
    let run_time = t1.elapsed();
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();

    let verdict = match status {
        Some(s) if s.success() => None,
        Some(s) => Some(describe(s)),
        None => Some(format!("still running after {} s: killed", limit.as_secs())),
    };
    match verdict {
        None => {
            println!(
                "{name}: ok (compile {:.2} s, run {:.2} s)",
                compile_time.as_secs_f64(),
                run_time.as_secs_f64()
            );
            if !stdout.is_empty() {
                print!("{stdout}");
            }
        }
        Some(why) => panic!(
            "C test program {name} failed: {why} after {:.2} s\ncommand: {shown}\n\
             --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            run_time.as_secs_f64()
        ),
    }
}

/// A program added to `c-tests/` without a `#[test]` here would silently never run.
#[test]
fn every_program_has_a_test() {
    let dir = manifest_dir().join("c-tests");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("c-tests/ is readable")
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "c" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = PROGRAMS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "c-tests/*.c and the c_tests! list in tests/c_programs.rs differ"
    );
}
