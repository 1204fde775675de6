//! What the operator's log holds at the default level (issue 13): no line per ordinary request,
//! refusals and server errors always, nothing at ERROR for a client's malformed request.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::common::fresh_database;

/// The server on a fresh database at the default log level, writing its log to `dir/log`.
async fn serve_at_the_default_level(
    dir: &std::path::Path,
) -> (std::process::Child, String, std::path::PathBuf) {
    let db = fresh_database(dir).await;
    let log = dir.join("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .arg("serve")
        .env_remove("KEYWARD_LOG")
        .env("KEYWARD_DATA_DIR", dir)
        .env("KEYWARD_DATABASE_URL", &db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let (child, base) = crate::common::process::serve(command).await;
    (child, base, log)
}

#[tokio::test]
async fn the_default_log_has_refusals_but_not_every_request_nor_malformed_heads() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, log) = serve_at_the_default_level(dir.path()).await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(
            client
                .get(format!("{base}/login"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let refused = client
        .get(format!("{base}/api/v1/apikeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // A request head no HTTP parser accepts: answered 400.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // One more request after it, so its log line is written before the process stops.
    client.get(format!("{base}/healthz")).send().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("keyward is listening"), "{text}");
    assert!(!text.contains("ERROR"), "nothing at ERROR: {text}");
    assert!(
        !text.contains("request finished"),
        "ordinary requests are debug lines: {text}"
    );
    assert_eq!(
        text.matches("request refused").count(),
        1,
        "the refusal is there: {text}"
    );
}

#[tokio::test]
async fn a_flood_of_refusals_is_logged_up_to_the_budget_not_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, log) = serve_at_the_default_level(dir.path()).await;
    let client = reqwest::Client::new();
    const FLOOD: usize = 300;
    let refusals = (0..FLOOD).map(|_| {
        let (client, url) = (client.clone(), format!("{base}/api/v1/apikeys"));
        async move { client.get(url).send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(refusals).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    client.get(format!("{base}/healthz")).send().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.matches("request refused").count();
    // Each second writes at most the budget; the flood takes a second or two, not six.
    let budget = keyward::telemetry::LINE_BUDGET as usize;
    assert!(
        (budget..=2 * budget).contains(&lines),
        "{lines} refusal lines for {FLOOD} refusals: {text}"
    );
}
