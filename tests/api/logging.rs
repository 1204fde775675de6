//! What the operator's log holds at the default level (issue 13): no line per ordinary request,
//! refusals and server errors always, nothing at ERROR for a client's malformed request.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::common::fresh_database;

#[tokio::test]
async fn the_default_log_has_refusals_but_not_every_request_nor_malformed_heads() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(dir.path()).await;
    let log = dir.path().join("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .arg("serve")
        .env_remove("KEYWARD_LOG")
        .env("KEYWARD_DATA_DIR", dir.path())
        .env("KEYWARD_DATABASE_URL", &db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let (mut child, base) = crate::common::process::serve(command).await;
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
