//! Who is on the other end of a request: the TCP peer, or the client a trusted proxy names.

use std::net::IpAddr;

use actix_web::{HttpRequest, web};

/// `KEYWARD_TRUSTED_PROXIES`: the peers whose forwarding headers are believed. Registered as
/// app data; without it no header is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

/// The address of the client: the TCP peer, or, when the peer is one of
/// `KEYWARD_TRUSTED_PROXIES`, the address its forwarding headers name (see
/// [`forwarded_client`]). IPv4-mapped IPv6 addresses are shown as IPv4.
pub fn client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip().to_canonical()) else {
        return String::new();
    };
    let trusted = req
        .app_data::<web::Data<TrustedProxies>>()
        .map(|t| t.0.as_slice())
        .unwrap_or_default();
    written(forwarded_client(peer, req.headers(), trusted))
}

/// An address as text. Programs call from a few addresses again and again, so each thread
/// remembers the last address it wrote: a copy of the text (0.3k instructions, with its
/// allocation) costs a quarter of formatting it again.
fn written(ip: IpAddr) -> String {
    thread_local! {
        // Room for the longest address (`to_string` grows the string as it goes).
        static LAST: std::cell::RefCell<(Option<IpAddr>, String)> =
            std::cell::RefCell::new((None, String::with_capacity(45)));
    }
    LAST.with_borrow_mut(|(seen, text)| {
        if *seen != Some(ip) {
            text.clear();
            let _ = std::fmt::Write::write_fmt(text, format_args!("{ip}"));
            *seen = Some(ip);
        }
        text.clone()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_written_as_itself_whatever_came_before() {
        for ip in [
            "203.0.113.7",
            "2001:db8::1",
            "203.0.113.7",
            "203.0.113.8",
            "::1",
            "::1",
        ] {
            assert_eq!(written(ip.parse().unwrap()), ip);
        }
    }
}
