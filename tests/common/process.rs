//! The real binary as an operator runs it: `keyward serve` in a process of its own, on a free
//! port, answered once `/healthz` answers.

use std::process::{Child, Command};

/// Starts `command` (a `keyward serve` with the test's environment) bound to a free loopback
/// port, and waits until it answers; its process and base URL.
pub async fn serve(mut command: Command) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = command
        .env("KEYWARD_BIND", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return (child, base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("keyward did not start at {base}");
}
