//! A small HTTP/1.1 server on loopback for the webhook tests: it receives what keyward's real
//! client sends, records every request, and answers from a script (a status code, or no answer
//! at all), as a flaky webhook endpoint would.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The path the receiver's URL names; every path is accepted, this is only what `url()` gives.
const PATH: &str = "/hooks/keyward";

/// A request head larger than this is not a webhook: the connection is dropped.
const MAX_HEAD: usize = 64 * 1024;

/// How long `wait_for` waits before failing the test.
const WAIT: Duration = Duration::from_secs(10);

/// What the receiver answers to one request, in order of arrival.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// Answer with this HTTP status code (body: a short text).
    Status(u16),
    /// Read the request, record it, then never answer: hold the connection open until the
    /// receiver is dropped.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Inner {
    script: Vec<Reply>,
    received: Vec<Received>,
}

/// What the connections share with the test.
struct Shared {
    inner: Mutex<Inner>,
    /// Notified (all waiters) each time a request is recorded.
    arrived: Notify,
}

impl Shared {
    /// The state, even if a connection task panicked while holding it: the records stay valid.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a request and picks its reply. Both happen under one lock, so the reply follows
    /// the request's place in the global order of arrival, whatever connection it came on.
    fn record(&self, request: Received) -> Reply {
        let reply = {
            let mut inner = self.lock();
            let reply = inner
                .script
                .get(inner.received.len())
                .copied()
                .unwrap_or(Reply::Status(200));
            inner.received.push(request);
            reply
        };
        self.arrived.notify_waiters();
        reply
    }
}

/// A running receiver; stopped when dropped, hanging connections included.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts on 127.0.0.1 with a random port. Replies follow `script` in order of request
    /// arrival; once the script is used up every request gets 200.
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port for the webhook receiver");
        let port = listener
            .local_addr()
            .expect("the receiver's bound address")
            .port();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                script,
                received: Vec::new(),
            }),
            arrived: Notify::new(),
        });
        let for_task = shared.clone();
        let task = tokio::spawn(async move {
            // The connections live in this task's JoinSet, so aborting the task drops the set,
            // which aborts every connection: hanging ones are closed with the receiver.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, for_task.clone()));
                // Forget finished connections so the set does not grow with every reconnect.
                while connections.try_join_next().is_some() {}
            }
        });
        Receiver { port, shared, task }
    }

    /// The URL to register as the webhook endpoint: `http://127.0.0.1:<port>/hooks/keyward`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// The same URL under another host name that resolves to loopback.
    pub fn url_via(&self, host: &str) -> String {
        format!("http://{host}:{}{PATH}", self.port)
    }

    /// Every request received so far (including ones it hung on), in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `n` requests have been received, or panics after 10 seconds.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let waiting = async {
            loop {
                // Register for the next notification before looking, so a request recorded
                // between the look and the await still wakes us.
                let arrived = self.shared.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let received = self.received();
                if received.len() >= n {
                    return received;
                }
                arrived.await;
            }
        };
        match tokio::time::timeout(WAIT, waiting).await {
            Ok(received) => received,
            Err(_) => {
                let received = self.received();
                panic!(
                    "the webhook receiver got {} request(s) within {WAIT:?}, expected at least {n}: {received:#?}",
                    received.len()
                )
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies a `Keyward-Signature` header value of the form `t=<unix seconds>,v1=<lower-case hex>`
/// where v1 = hex(HMAC-SHA256(key = secret's UTF-8 bytes, message = "<t>.<body>")).
/// Returns Some(t) when some v1 entry matches (there may be several v1 entries separated by
/// commas), None otherwise.
pub fn verify_signature(secret: &str, header: &str, body: &str) -> Option<i64> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if timestamp.is_none() => timestamp = Some(t),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t_text = timestamp?;
    let t: i64 = t_text.parse().ok()?;
    // The message is built from the timestamp exactly as sent, since that text is what was signed.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(t_text.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Every candidate is compared, matched or not, so timing does not tell which one matched.
    let matched = candidates.iter().fold(subtle::Choice::from(0), |acc, v| {
        acc | v.as_bytes().ct_eq(expected.as_bytes())
    });
    bool::from(matched).then_some(t)
}

/// A request head, parsed.
struct Head {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept after this exchange.
    fn keep_alive(&self) -> bool {
        let connection = self
            .header("connection")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if self.version == "HTTP/1.0" {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }
}

/// Serves one connection: requests one after another until the client closes it (reqwest keeps
/// pooled connections open and sends several webhooks down one).
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    // Answers go out at once, as a real server's do (no Nagle delay against delayed ACKs).
    let _ = stream.set_nodelay(true);
    // Bytes read but not yet used: the start of the next request may come with this one's body.
    let mut buf = Vec::new();
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buf).await else {
            return;
        };
        let Some(head) = parse_head(&buf[..head_len]) else {
            let _ = respond(&mut stream, 400, false, false).await;
            return;
        };
        if head
            .header("transfer-encoding")
            .is_some_and(|te| !te.eq_ignore_ascii_case("identity"))
        {
            // keyward sends a Content-Length; a chunked body means the client changed, and the
            // test should say so rather than see a half-read request.
            eprintln!(
                "webhook receiver: refusing {} {} sent with Transfer-Encoding (not recorded)",
                head.method, head.path
            );
            let _ = respond(&mut stream, 501, false, false).await;
            return;
        }
        let length = match head.header("content-length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                let _ = respond(&mut stream, 400, false, false).await;
                return;
            }
        };
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && buf.len() < head_len + length
            && stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        // The body may arrive over several reads.
        while buf.len() < head_len + length {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        let body = String::from_utf8_lossy(&buf[head_len..head_len + length]).into_owned();
        buf.drain(..head_len + length);
        let keep_alive = head.keep_alive();
        let is_head = head.method == "HEAD";
        let reply = shared.record(Received {
            method: head.method,
            path: head.path,
            headers: head.headers,
            body,
        });
        match reply {
            Reply::Status(code) => {
                if !respond(&mut stream, code, is_head, keep_alive).await || !keep_alive {
                    return;
                }
            }
            Reply::Hang => {
                // Never answer and never close: the client must give up on its own timeout.
                // The task is aborted, and the socket closed, when the receiver is dropped.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Reads until `buf` holds a whole request head; returns its length (blank line included), or
/// None when the client closes the connection (or sends something too large to be a head).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(at + 4);
        }
        if buf.len() > MAX_HEAD || !read_more(stream, buf).await {
            return None;
        }
    }
}

/// Appends what the socket has to `buf`; false at end of stream or on an error.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Parses a request line and headers (the head, blank line included).
fn parse_head(raw: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path, version) = (
        request_line.next()?.to_string(),
        request_line.next()?.to_string(),
        request_line.next()?.to_string(),
    );
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(Head {
        method,
        path,
        version,
        headers,
    })
}

/// Writes a response with a short text body; false if the client has gone.
async fn respond(stream: &mut TcpStream, code: u16, is_head: bool, keep_alive: bool) -> bool {
    let reason = reason(code);
    // 1xx, 204 and 304 never carry a body: a stray one would be read as the next response.
    let bodiless = code < 200 || code == 204 || code == 304;
    let body = if bodiless {
        String::new()
    } else {
        format!("{code} {reason}\n")
    };
    let mut response = format!("HTTP/1.1 {code} {reason}\r\n");
    if !bodiless {
        response.push_str(&format!(
            "Content-Length: {}\r\nContent-Type: text/plain\r\n",
            body.len()
        ));
    }
    if !keep_alive {
        response.push_str("Connection: close\r\n");
    }
    response.push_str("\r\n");
    if !is_head {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await.is_ok() && stream.flush().await.is_ok()
}

/// The reason phrase of a status code (any text would do; these read well in failures).
fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
