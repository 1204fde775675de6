//! A headless Chromium session through a chromedriver started for the test.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// A browser window plus the chromedriver serving it; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// chromedriver's own URL, for commands fantoccini does not offer (virtual authenticators).
    driver_url: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver_path() -> String {
    std::env::var("KEYWARD_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium_path() -> String {
    std::env::var("KEYWARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// axe-core's script: `KEYWARD_AXE_CORE`, else where `scripts/check` installs it from npm.
pub fn axe_source() -> String {
    let path = std::env::var("KEYWARD_AXE_CORE").map_or_else(
        |_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/axe/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): npm install --prefix target/axe axe-core@4.14.1",
            path.display()
        )
    })
}

/// The colour scheme the page is asked for (`prefers-color-scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of the given size.
    pub async fn start(width: u32, height: u32) -> Browser {
        Self::start_themed(width, height, Theme::Light).await
    }

    /// Starts chromedriver and a headless Chromium window of the given size, asking pages for
    /// the given colour scheme.
    pub async fn start_themed(width: u32, height: u32, theme: Theme) -> Browser {
        Self::launch(width, height, theme, true).await
    }

    /// Starts a window of the given size in which pages run no JavaScript at all.
    pub async fn start_without_javascript(width: u32, height: u32) -> Browser {
        Self::launch(width, height, Theme::Light, false).await
    }

    /// Starts a window of the given size and colour scheme, with or without JavaScript.
    pub async fn start_with(width: u32, height: u32, theme: Theme, javascript: bool) -> Browser {
        Self::launch(width, height, theme, javascript).await
    }

    async fn launch(width: u32, height: u32, theme: Theme, javascript: bool) -> Browser {
        let port = free_port();
        // A process group of its own, so that a test that fails takes the browser down too.
        let driver = Command::new(chromedriver_path())
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver at {} could not start: {e} (scripts/check installs chromium-driver)", chromedriver_path()));
        let profile = tempfile::tempdir().unwrap();
        // 2 blocks JavaScript on every page (the WebDriver commands of the test still run).
        let scripts = if javascript { 1 } else { 2 };
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_path(),
                "prefs": {"profile.managed_default_content_settings.javascript": scripts},
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--blink-settings=preferredColorScheme={}", match theme {
                        Theme::Dark => 0,
                        Theme::Light => 1,
                    }),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    client.set_window_size(width, height).await.ok();
                    return Browser {
                        client,
                        driver,
                        driver_url: url.clone(),
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last_error = e.to_string();
                    // chromedriver is still starting: poll its port again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("could not open a Chromium session: {last_error}");
    }

    /// Opens a URL.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The first element matching a CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Every element matching a CSS selector, now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Types into a field, replacing its value.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks an element. When it is a submit button, waits until the browser has left the page
    /// (the old document is gone), so that what the test reads next is the answer and not the
    /// form it just sent; a submission a script keeps on the page is waited for at most 10 s.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        let submits = element.prop("type").await.ok().flatten().as_deref() == Some("submit");
        let before = if submits {
            self.client.find(Locator::Css("html")).await.ok()
        } else {
            None
        };
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        if let Some(old) = before {
            for _ in 0..200 {
                if let Err(e) = old.tag_name().await
                    && e.is_stale_element_reference()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The text of the first match, found again if the page changed between finding and reading.
    pub async fn text(&self, css: &str) -> String {
        let mut last = String::new();
        for _ in 0..20 {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("text of {css}: {last}");
    }

    /// The path of the current page.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page's path is `path` (after a form submission or a click).
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected to reach {path}, still at {}", self.path().await);
    }

    /// The serious and critical accessibility violations axe-core (`axe`, its script) finds on
    /// the current page, one line each: every rule of WCAG 2.0, 2.1 and 2.2 A and AA and the best
    /// practices, and the check that a control's accessible name holds its visible text.
    pub async fn axe_violations(&self, axe: &str) -> Vec<String> {
        self.client
            .execute(axe, vec![])
            .await
            .expect("axe-core loads");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {
                     runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                      'wcag22aa', 'best-practice']},
                     rules: {'label-content-name-mismatch': {enabled: true}}})
                   .then(r => done(r.violations
                       .filter(v => v.impact === 'serious' || v.impact === 'critical')
                       .map(v => v.id + ' (' + v.impact + '): '
                           + v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe-core runs");
        serde_json::from_value(found).expect("a list of violations")
    }

    /// The page's width beyond the window's, in CSS pixels (0 when nothing scrolls sideways).
    pub async fn overflow_x(&self) -> i64 {
        self.client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth",
                vec![],
            )
            .await
            .unwrap()
            .as_i64()
            .unwrap()
    }

    /// The first visible element matching `css` that does not lie wholly inside the window, as
    /// `selector: left..right x top..bottom`; `None` when all do (or none is visible).
    pub async fn outside_viewport(&self, css: &str) -> Option<String> {
        let found = self
            .client
            .execute(
                "const w = window.innerWidth, h = window.innerHeight;
                 for (const el of document.querySelectorAll(arguments[0])) {
                   const r = el.getBoundingClientRect();
                   if (r.width === 0 && r.height === 0) continue;
                   if (r.left < 0 || r.right > w + 0.5 || r.top < 0 || r.bottom > h + 0.5)
                     return arguments[0] + ': ' + Math.round(r.left) + '..' + Math.round(r.right)
                       + ' x ' + Math.round(r.top) + '..' + Math.round(r.bottom)
                       + ' in ' + w + ' x ' + h;
                 }
                 return null;",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        found.as_str().map(str::to_string)
    }

    /// Saves a screenshot as `target/screens/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The element that has keyboard focus, described as `tag#id.class text`.
    pub async fn focused(&self) -> String {
        let el = self.client.active_element().await.unwrap();
        let tag = el.tag_name().await.unwrap_or_default();
        let class = el
            .attr("class")
            .await
            .unwrap_or_default()
            .unwrap_or_default();
        let text = el.text().await.unwrap_or_default();
        format!("{tag}.{class} {text}")
    }

    /// Presses a key on the focused element.
    pub async fn press(&self, key: fantoccini::key::Key) {
        let el = self.client.active_element().await.unwrap();
        el.send_keys(&key.to_string()).await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started (after `quit` only chromedriver is left;
        // after a failed test, both).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// What the page's clipboard holds, read by pasting into a scratch field.
    pub async fn clipboard(&self) -> String {
        self.client
            .execute(
                "const t = document.createElement('textarea'); t.id = 'paste-here'; document.body.appendChild(t); t.focus();",
                vec![],
            )
            .await
            .unwrap();
        let area = self.find("#paste-here").await;
        area.send_keys(&(fantoccini::key::Key::Control + "v"))
            .await
            .unwrap();
        let text = area.prop("value").await.unwrap().unwrap_or_default();
        self.client
            .execute("document.getElementById('paste-here').remove();", vec![])
            .await
            .unwrap();
        text
    }
    /// Ends the WebDriver session, which closes Chromium.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Browser {
    /// Waits until the first match of `css` has exactly `expected` as text (after a navigation),
    /// tolerating the old page's elements going stale meanwhile.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        self.wait_for_text_where(css, expected, |text| text == expected)
            .await;
    }

    /// Waits until the first match of `css` contains `part`.
    pub async fn wait_for_text_containing(&self, css: &str, part: &str) {
        self.wait_for_text_where(css, part, |text| text.contains(part))
            .await;
    }

    async fn wait_for_text_where(&self, css: &str, wanted: &str, ok: impl Fn(&str) -> bool) {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
            {
                if ok(&text) {
                    return;
                }
                seen = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {css} to show {wanted:?}, saw {seen:?}");
    }
}

impl Browser {
    /// Adds a virtual authenticator to the window through WebDriver's WebAuthn extension
    /// commands: a built-in (platform) CTAP2 authenticator that keeps discoverable credentials
    /// and verifies its user. Returns its ID.
    pub async fn add_virtual_authenticator(&self) -> String {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/webauthn/authenticator",
                self.driver_url
            ))
            .json(&serde_json::json!({
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                "hasUserVerification": true, "isUserVerified": true
            }))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        answer["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no authenticator added: {answer}"))
            .to_string()
    }
}
