//! Allowed networks: the CIDR ranges (IPv4 and IPv6) a key may be used from (SPEC §3). Stored
//! as one comma-separated list; empty allows every address.

use std::net::IpAddr;

use ipnet::IpNet;

/// Most ranges one key may list.
const MAX_NETWORKS: usize = 50;

/// The ranges of a stored list; parts that do not read as a range are left out.
pub fn ranges(allowed: &str) -> Vec<IpNet> {
    allowed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The ranges of a stored list as text, each on its own (the list a screen or the API shows).
pub fn listed(allowed: &str) -> Vec<String> {
    allowed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether an address is inside the allowed networks (a comma-separated CIDR list; empty
/// allows every address). An unreadable address is outside.
pub fn network_allows(allowed: &str, client_ip: &str) -> bool {
    let nets = ranges(allowed);
    if nets.is_empty() {
        return true;
    }
    match client_ip.parse::<IpAddr>() {
        Ok(ip) => {
            // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) matches IPv4 ranges.
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            nets.iter().any(|n| n.contains(&ip))
        }
        Err(_) => false,
    }
}

/// Checks a list of CIDR ranges typed by a person; returns it normalised, or what is wrong.
pub fn parse_networks(raw: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for part in raw
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let net: IpNet = match part.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match part.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "“{part}” is not an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32."
                    ));
                }
            },
        };
        out.push(net.trunc().to_string());
    }
    if out.len() > MAX_NETWORKS {
        return Err(format!("At most {MAX_NETWORKS} networks."));
    }
    Ok(out.join(", "))
}

/// Whether `new` allows no address that `old` refuses (empty: every address).
pub fn networks_narrow(old: &str, new: &str) -> bool {
    let (old, new) = (ranges(old), ranges(new));
    if old.is_empty() {
        return true;
    }
    !new.is_empty() && new.iter().all(|n| old.iter().any(|o| o.contains(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_allow_what_they_contain() {
        assert!(network_allows("", "203.0.113.9"));
        assert!(network_allows("10.0.0.0/8, 192.168.1.0/24", "10.20.30.40"));
        assert!(!network_allows("10.0.0.0/8", "11.0.0.1"));
        assert!(network_allows("2001:db8::/32", "2001:db8::1"));
        assert!(!network_allows("2001:db8::/32", "2001:db9::1"));
        assert!(network_allows("127.0.0.0/8", "::ffff:127.0.0.1"));
        assert!(!network_allows("10.0.0.0/8", "not an address"));
    }

    #[test]
    fn typed_networks_are_checked_and_normalised() {
        assert_eq!(
            parse_networks("10.1.2.3/8,  2001:db8::1/32").unwrap(),
            "10.0.0.0/8, 2001:db8::/32"
        );
        assert_eq!(parse_networks("192.0.2.7").unwrap(), "192.0.2.7/32");
        assert_eq!(parse_networks("").unwrap(), "");
        assert!(
            parse_networks("10.0.0.0/33")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_networks("example.com").is_err());
    }

    #[test]
    fn narrowing_networks_stays_inside_the_old_ones() {
        assert!(networks_narrow("", "10.0.0.0/8"));
        assert!(networks_narrow("", ""));
        assert!(networks_narrow("10.0.0.0/8", "10.1.0.0/16, 10.2.3.4/32"));
        assert!(!networks_narrow("10.0.0.0/8", ""));
        assert!(!networks_narrow("10.0.0.0/8", "10.0.0.0/7"));
        assert!(!networks_narrow("10.0.0.0/8", "10.1.0.0/16, 192.0.2.0/24"));
        assert!(networks_narrow("2001:db8::/32", "2001:db8:1::/48"));
    }

    #[test]
    fn stored_lists_read_as_their_parts() {
        assert_eq!(
            listed("10.0.0.0/8, 2001:db8::/32"),
            vec!["10.0.0.0/8", "2001:db8::/32"]
        );
        assert!(listed("").is_empty());
    }
}
