//! Who is asking. A handler that takes `CurrentUser` runs only for a signed-in, active user. What
//! that person may open is decided by their permissions, as for an API key: the console's
//! `web::granted::Granted<P>` is obtained only by holding `P`.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::auth::csrf;
use crate::auth::session_store::USER_ID;
use crate::error::AppError;
use crate::repo;
use crate::startup::AppState;

/// Session key holding the unix time of sign-in, for the absolute timeout.
pub const SIGNED_IN_AT: &str = "auth_at";
/// A session ends this long after sign-in however active it is.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;

/// The signed-in user and what the page frame needs to know about them.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub name: String,
    pub email: String,
    /// Member of the built-in Administrators group: only the grant rules of SPEC §11 ask this
    /// (who gives Tenant Administrator or Administrators); pages decide by `permissions`.
    pub is_admin: bool,
    /// The union of the permissions of the person's roles, through their groups.
    pub permissions: Vec<String>,
    pub unread_notifications: i64,
    /// The session's CSRF token, for the forms on the page (sign-out is on every page).
    pub csrf: String,
    /// Client address, for the audit log.
    pub client_ip: String,
}

impl CurrentUser {
    /// The user as the actor of a change.
    pub fn actor(&self) -> crate::service::keys::Actor {
        crate::service::keys::Actor {
            user_id: self.id.clone(),
            label: self.email.clone(),
            is_admin: self.is_admin,
            permissions: self.permissions.clone(),
            client_ip: self.client_ip.clone(),
            acting_key: None,
            previous_secret: false,
        }
    }

    /// Whether the person holds a permission, decided as for an API key (`Actor::may`).
    pub fn may(&self, permission: crate::domain::Permission) -> bool {
        self.actor().may(permission)
    }
}

/// The address of the client: the TCP peer, or, when the peer is one of
/// `KEYWARD_TRUSTED_PROXIES`, the address its forwarding headers name (see
/// [`forwarded_client`]). IPv4-mapped IPv6 addresses are shown as IPv4.
pub fn client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else {
        return String::new();
    };
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.trusted_proxies.as_slice())
        .unwrap_or_default();
    forwarded_client(peer, req.headers(), trusted).to_string()
}

/// The client behind trusted proxies. Forwarding headers are read only when `peer` is a trusted
/// proxy (anyone else can write them); then the client is the right-most address of
/// `Forwarded` (RFC 7239 `for=`) or `X-Forwarded-For` that is not itself a trusted proxy:
/// addresses further left were written by the client and prove nothing. A malformed header, a
/// hop that names no address (`unknown`, an obfuscated name), or the two headers naming
/// different clients (one was forged past a proxy that sets only the other) fall back to the
/// peer, so a forged header can never choose the address failures count against.
pub fn forwarded_client(
    peer: IpAddr,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let joined = |name: &str| -> Result<Option<String>, ()> {
        let mut values = headers.get_all(name).peekable();
        if values.peek().is_none() {
            return Ok(None);
        }
        let parts: Result<Vec<&str>, _> = values.map(|v| v.to_str()).collect();
        parts.map(|p| Some(p.join(","))).map_err(|_| ())
    };
    let from = |hops: Result<Option<Vec<Hop>>, ()>| -> Result<Option<IpAddr>, ()> {
        let Some(hops) = hops? else {
            return Ok(None);
        };
        let mut leftmost = None;
        for hop in hops.iter().rev() {
            match hop {
                Hop::Address(ip) if is_trusted(ip) => leftmost = Some(*ip),
                Hop::Address(ip) => return Ok(Some(*ip)),
                Hop::Unnamed => return Err(()),
            }
        }
        // Every hop is a trusted proxy: the request began at one of them.
        Ok(leftmost)
    };
    let forwarded =
        from(joined("forwarded").and_then(|h| h.map(|v| forwarded_hops(&v)).transpose()));
    let x_forwarded_for = from(
        joined("x-forwarded-for").and_then(|h| h.map(|v| x_forwarded_for_hops(&v)).transpose()),
    );
    match (forwarded, x_forwarded_for) {
        (Ok(Some(a)), Ok(Some(b))) if a == b => a,
        (Ok(Some(a)), Ok(None)) | (Ok(None), Ok(Some(a))) => a,
        _ => peer,
    }
}

/// One hop of a forwarding header.
enum Hop {
    Address(IpAddr),
    /// `unknown`, an obfuscated identifier, or no `for=`: a hop that names no address.
    Unnamed,
}

/// An address as forwarding headers write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_hop_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = raw.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    let inner = raw.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|v6| IpAddr::V6(v6).to_canonical())
}

/// The hops of `X-Forwarded-For: client, proxy1, proxy2`; `Err` when one is not an address.
fn x_forwarded_for_hops(value: &str) -> Result<Vec<Hop>, ()> {
    value
        .split(',')
        .map(|part| parse_hop_address(part).map(Hop::Address).ok_or(()))
        .collect()
}

/// The hops of `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"` (RFC 7239);
/// `Err` when the header cannot be read.
fn forwarded_hops(value: &str) -> Result<Vec<Hop>, ()> {
    let mut hops = Vec::new();
    for element in split_outside_quotes(value, ',') {
        let mut hop = Hop::Unnamed;
        for pair in split_outside_quotes(element, ';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, raw) = pair.split_once('=').ok_or(())?;
            if !name.trim().eq_ignore_ascii_case("for") {
                continue;
            }
            let raw = raw.trim();
            let unquoted = match raw.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"').ok_or(())?,
                None => raw,
            };
            hop = match parse_hop_address(unquoted) {
                Some(ip) => Hop::Address(ip),
                // `unknown` and obfuscated identifiers (`_hidden`) are allowed but name nobody.
                None if unquoted.eq_ignore_ascii_case("unknown") || unquoted.starts_with('_') => {
                    Hop::Unnamed
                }
                None => return Err(()),
            };
        }
        hops.push(hop);
    }
    Ok(hops)
}

/// Splits on `sep` where it is not inside a quoted string.
fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

async fn load_current_user(req: HttpRequest, session: Session) -> Result<CurrentUser, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("application state missing")))?
        .clone();
    let sign_in = || AppError::SignInRequired {
        next: req.path().to_string(),
    };
    let user_id = session
        .get::<String>(USER_ID)
        .ok()
        .flatten()
        .ok_or_else(sign_in)?;
    let signed_in_at = session.get::<i64>(SIGNED_IN_AT).ok().flatten().unwrap_or(0);
    let now = state.clock.unix();
    if now - signed_in_at > ABSOLUTE_TIMEOUT_SECS {
        session.purge();
        return Err(sign_in());
    }
    let mut conn = state.pool.acquire().await?;
    let user = match repo::users::find(&mut conn, &user_id).await? {
        Some(u) if u.active == 1 => u,
        _ => {
            session.purge();
            return Err(sign_in());
        }
    };
    let permissions = repo::roles::user_permissions(&mut conn, &user.id).await?;
    let is_admin =
        repo::groups::is_member(&mut conn, repo::groups::ADMINISTRATORS, &user.id).await?;
    let unread_notifications = repo::notifications::unread_count(&mut conn, &user.id).await?;
    Ok(CurrentUser {
        id: user.id,
        name: user.name,
        email: user.email,
        is_admin,
        permissions,
        unread_notifications,
        csrf: csrf::token(&session),
        client_ip: client_ip(&req),
    })
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        let session = req.get_session();
        Box::pin(load_current_user(req, session))
    }
}
