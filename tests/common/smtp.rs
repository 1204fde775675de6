//! A small SMTP server on loopback for the tests: it speaks enough RFC 5321 for lettre's real
//! client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records what it accepts, and can be told
//! to answer 4xx or to stall in the middle of a message, as a troubled mail server would.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept every message.
    Accept,
    /// Refuse every transaction with a temporary failure (451).
    TempFail,
    /// Accept `n` messages in all, then never answer the end of the next one's data (on
    /// connections opened in this mode, also after the mode changes).
    StallAfter(usize),
    /// The first `n` connections opened stall once at `step` until [`SmtpServer::release`],
    /// then go on normally (a released stall at the data reply accepts the message, as a slow
    /// server that had queued it would); later connections do not stall.
    StallFirst(Step, usize),
}

/// A point of the conversation where the server can sit on its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Greeting,
    Mail,
    Rcpt,
    DataReply,
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The Message-ID header's value.
    pub fn message_id(&self) -> String {
        self.data
            .lines()
            .find_map(|l| {
                l.strip_prefix("Message-ID: ")
                    .or_else(|| l.strip_prefix("Message-Id: "))
            })
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

struct Inner {
    mode: Mode,
    accepted: Vec<Received>,
    /// Connections opened so far.
    connections: usize,
}

/// A running server; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    /// Notified when the server starts stalling on a message.
    pub stalled: Arc<Notify>,
    /// Wakes every stalled conversation.
    released: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    /// A server on a free loopback port.
    pub async fn start(mode: Mode) -> Self {
        Self::start_on(0, mode).await
    }

    /// A server on `port` (0: any free one).
    pub async fn start_on(port: u16, mode: Mode) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("SMTP port free");
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Mutex::new(Inner {
            mode,
            accepted: Vec::new(),
            connections: 0,
        }));
        let stalled = Arc::new(Notify::new());
        let released = Arc::new(Notify::new());
        let (i, s, r) = (inner.clone(), stalled.clone(), released.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, i.clone(), s.clone(), r.clone()));
            }
        });
        SmtpServer {
            port,
            inner,
            stalled,
            released,
            task,
        }
    }

    /// The URL keyward is configured with.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Changes how the server answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// Lets every conversation stalled so far go on.
    pub fn release(&self) {
        self.released.notify_waiters();
    }

    /// Every message accepted so far.
    pub fn accepted(&self) -> Vec<Received> {
        self.inner.lock().unwrap().accepted.clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nothing listens on (a mail server that is down).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn converse(
    stream: TcpStream,
    inner: Arc<Mutex<Inner>>,
    stalled: Arc<Notify>,
    released: Arc<Notify>,
) {
    // Answers go out at once, as a real server's do (no Nagle delay against delayed ACKs).
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let say = async |w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str| {
        w.write_all(text.as_bytes()).await.is_ok()
    };
    // Where this connection stalls, once.
    let mut stall_at = {
        let mut inner = inner.lock().unwrap();
        inner.connections += 1;
        match inner.mode {
            Mode::StallFirst(step, n) if inner.connections <= n => Some(step),
            _ => None,
        }
    };
    // Sits on the answer at `step` (when this connection stalls there) until released.
    let mut hold = async |step: Step| {
        if stall_at == Some(step) {
            stall_at = None;
            let woken = released.notified();
            stalled.notify_one();
            woken.await;
        }
    };
    hold(Step::Greeting).await;
    if !say(&mut write, "220 localhost test ESMTP\r\n").await {
        return;
    }
    // A connection opened while the server stalls keeps stalling once it reaches the limit,
    // even if the server recovers meanwhile: what it never acknowledged stays unaccepted.
    let stall_limit = match inner.lock().unwrap().mode {
        Mode::StallAfter(n) => Some(n),
        _ => None,
    };
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let mode = inner.lock().unwrap().mode;
        let reply = if upper.starts_with("EHLO") {
            "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".to_string()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK\r\n".to_string()
        } else if upper.starts_with("RSET") {
            (from, to) = (String::new(), Vec::new());
            "250 OK\r\n".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            hold(Step::Mail).await;
            if mode == Mode::TempFail {
                "451 4.3.0 Mailbox busy, try again later\r\n".to_string()
            } else {
                from = line[10..].trim().to_string();
                "250 OK\r\n".to_string()
            }
        } else if upper.starts_with("RCPT TO:") {
            hold(Step::Rcpt).await;
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            "250 OK\r\n".to_string()
        } else if upper.starts_with("DATA") {
            if !say(&mut write, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            hold(Step::DataReply).await;
            let stall = {
                let mut inner = inner.lock().unwrap();
                let limit = match inner.mode {
                    Mode::StallAfter(n) => Some(n),
                    _ => stall_limit,
                };
                match limit {
                    Some(n) if inner.accepted.len() >= n => true,
                    _ => {
                        inner.accepted.push(Received {
                            from: std::mem::take(&mut from),
                            to: std::mem::take(&mut to),
                            data,
                        });
                        false
                    }
                }
            };
            if stall {
                // Never answer: the message is not accepted; the client must give up or die.
                stalled.notify_one();
                std::future::pending::<()>().await;
            }
            let n = inner.lock().unwrap().accepted.len();
            format!("250 2.0.0 Ok: queued as {n}\r\n")
        } else if upper.starts_with("QUIT") {
            let _ = say(&mut write, "221 Bye\r\n").await;
            return;
        } else {
            "502 Command not implemented\r\n".to_string()
        };
        if !say(&mut write, &reply).await {
            return;
        }
    }
}
