//! Which addresses outbound requests may reach. Hosts that come from a user's form (a generic
//! app's base URL) must not lead into the service's own network: loopback, private, link-local
//! (cloud metadata lives there), carrier-grade NAT, multicast and unspecified addresses are
//! refused, judged on the resolved address rather than the name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is somewhere a user-supplied URL may not lead.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT: internal on many clouds.
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments, and 198.18.0.0/15, benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // 64:ff9b::/96 NAT64 may translate to an internal IPv4 address.
        || (first == 0x64 && ip.segments()[1] == 0xff9b)
}

#[cfg(test)]
mod tests {
    use super::is_internal;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal} should be internal");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public} should be public");
        }
    }
}
