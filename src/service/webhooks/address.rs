//! Where webhooks may go (SPEC §11): only to public addresses unless
//! `KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`, so that an endpoint cannot turn keyward into a blind
//! POST client and port scanner for loopback, the private network or the cloud metadata service.
//! The endpoint form checks every address its host resolves to; the sender checks again when it
//! connects (`jobs::webhooks`), because DNS may answer differently then.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Which receivers an endpoint may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRule {
    /// Public addresses only (the default).
    PublicOnly,
    /// Any address, loopback and private ones included (`KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`).
    Any,
}

impl AddressRule {
    /// The rule `KEYWARD_WEBHOOK_ALLOW_PRIVATE` sets.
    pub fn from_allow_private(allow_private: bool) -> Self {
        if allow_private {
            AddressRule::Any
        } else {
            AddressRule::PublicOnly
        }
    }
}

/// Whether `ip` is a public unicast address a receiver may have: not loopback, unspecified,
/// private, shared (CGNAT), link-local (the metadata service at 169.254.169.254 among them),
/// unique-local, multicast, broadcast, documentation, benchmarking or otherwise reserved, and no
/// IPv6 form (mapped, compatible, NAT64, 6to4) of such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", 0.0.0.0 among it
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // protocol assignments, TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Forms that carry an IPv4 address reach that address: judge it instead.
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // Global unicast is 2000::/3; everything else (loopback, unspecified, unique-local fc00::/7,
    // link-local fe80::/10, multicast ff00::/8, discard-only 100::/64, local NAT64 …) is not.
    let global_unicast = s[0] & 0xe000 == 0x2000;
    // 2001::/23 is IETF protocol assignments (Teredo among them), 2001:db8::/32 and 3fff::/20
    // are for documentation.
    let reserved =
        (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8)) || (s[0] == 0x3fff && s[1] < 0x1000);
    global_unicast && !reserved
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// Names that mean this machine whatever DNS says (RFC 6761 `localhost` and its subdomains).
pub fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "localhost.localdomain"
        || host == "ip6-localhost"
        || host == "ip6-loopback"
}

/// How long the endpoint form waits for DNS before it leaves the check to the sender.
const RESOLVE_WAIT: Duration = Duration::from_secs(5);

/// The form's message for a receiver that is not public.
fn not_public(host: &str) -> String {
    format!(
        "“{host}” resolves to a private address (loopback, private network, link-local or \
         otherwise not public). keyward sends webhooks only to public addresses unless \
         KEYWARD_WEBHOOK_ALLOW_PRIVATE is true."
    )
}

/// Checks that every address the host of `url` (an http or https URL) resolves to is public.
/// A name that does not resolve now is accepted: the sender resolves and checks it again
/// before every delivery, so nothing private is reached either way.
pub async fn check_receiver(url: &url::Url, rule: AddressRule) -> Result<(), String> {
    if rule == AddressRule::Any {
        return Ok(());
    }
    let shown = url.host_str().unwrap_or_default();
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) if is_local_name(name) => return Err(not_public(shown)),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            match tokio::time::timeout(RESOLVE_WAIT, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "a webhook host does not resolve now");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!("resolving a webhook host took too long");
                    Vec::new()
                }
            }
        }
        None => return Err("The URL needs a host name.".into()),
    };
    if addresses.into_iter().all(is_public) {
        Ok(())
    } else {
        Err(not_public(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(raw: &str) -> bool {
        is_public(raw.parse().unwrap())
    }

    #[test]
    fn loopback_private_link_local_and_reserved_addresses_are_not_public() {
        for raw in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(!public(raw), "{raw} is not public");
        }
    }

    #[test]
    fn ordinary_internet_addresses_are_public() {
        for raw in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.0.1.1",
            "198.17.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(public(raw), "{raw} is public");
        }
    }

    #[test]
    fn localhost_names_are_local_in_any_case_and_with_a_final_dot() {
        for name in ["localhost", "LOCALHOST.", "api.localhost", "ip6-localhost"] {
            assert!(is_local_name(name), "{name}");
        }
        for name in ["localhost.example.com", "example.com", "notlocalhost"] {
            assert!(!is_local_name(name), "{name}");
        }
    }

    #[tokio::test]
    async fn literal_and_local_receivers_are_refused_unless_private_ones_are_allowed() {
        for raw in [
            "http://127.0.0.1:9000/h",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
            "http://localhost:8080/",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
        ] {
            let url = url::Url::parse(raw).unwrap();
            let refused = check_receiver(&url, AddressRule::PublicOnly).await;
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|m| m.contains("resolves to a private address")),
                "{raw}: {refused:?}"
            );
            assert_eq!(check_receiver(&url, AddressRule::Any).await, Ok(()));
        }
        let public = url::Url::parse("https://93.184.216.34/hooks").unwrap();
        assert_eq!(
            check_receiver(&public, AddressRule::PublicOnly).await,
            Ok(())
        );
    }
}
