//! The `fjord start` command line as a user meets it: a bad value, a port
//! in use or an unusable data folder is one readable line and a non-zero
//! exit; an unknown key is a warning and the broker starts.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fjord(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    c.arg("start").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Runs a start that must fail; returns its stderr.
fn fails(args: &[&str]) -> String {
    let mut child = fjord(args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(!status.success(), "exited 0 for {args:?}: {err}");
            return err;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("fjord {args:?} kept running instead of failing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn bad_values_ports_and_folders_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("log.dirs={}", dir.path().join("d").display());
    let listen = format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port());

    let err = fails(&["--override", &listen, "--override", &data, "--override", "log.segment.bytes=abc"]);
    assert!(err.contains("log.segment.bytes") && err.contains("abc"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let err = fails(&["--override", "listeners=PLAINTEXT://127.0.0.1:notaport", "--override", &data]);
    assert!(err.contains("listeners"), "{err}");

    let err = fails(&["--config", "/no/such/server.properties"]);
    assert!(err.contains("/no/such/server.properties"), "{err}");

    // A port someone else holds.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("listeners=PLAINTEXT://127.0.0.1:{}", taken.local_addr().unwrap().port());
    let err = fails(&["--override", &busy, "--override", &data]);
    assert!(err.contains("127.0.0.1") && err.to_lowercase().contains("in use"), "{err}");

    // A data folder that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = fails(&["--override", &listen, "--override", &format!("log.dirs={}", file.display())]);
    assert!(err.contains("log.dirs") && err.contains("a-file"), "{err}");
}

#[test]
fn an_unknown_key_is_a_warning_and_the_broker_starts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = fjord(&[
        "--override",
        &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        "--override",
        &format!("log.dirs={}", dir.path().display()),
        "--override",
        "no.such.key=1",
    ])
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "fjord exited");
        assert!(Instant::now() < deadline, "fjord never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM stops it cleanly.
    sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SIGTERM should stop it cleanly: {err}");
    assert!(err.contains("no.such.key"), "no warning about the unknown key: {err}");
    assert!(dir.path().join("__cluster_metadata-0").is_dir(), "metadata log under log.dirs");
}

fn sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}
