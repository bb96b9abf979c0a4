//! Restricted addresses (§3.5): loopback, private, link-local, documentation, multicast and other
//! special-purpose ranges that an allowlist entry with a wildcard host must never reach.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`) are judged by the embedded IPv4 address. As a conservative extension the
//! deprecated IPv4-compatible form `::a.b.c.d` (`::/96`) is judged the same way, since some stacks
//! still route it to the embedded IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Restricted IPv4 networks as (network, prefix length).
const RESTRICTED_V4: [(Ipv4Addr, u8); 14] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// Restricted IPv6 networks that do not embed an IPv4 address, as (network, prefix length).
const RESTRICTED_V6: [(Ipv6Addr, u8); 7] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

/// Whether `ip` is a restricted address of the §3.5 table.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(address) => is_restricted_v4(address),
        IpAddr::V6(address) => is_restricted_v6(address),
    }
}

fn is_restricted_v4(address: Ipv4Addr) -> bool {
    let bits = u32::from(address);
    RESTRICTED_V4.iter().any(|&(network, length)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
        bits & mask == u32::from(network)
    })
}

fn is_restricted_v6(address: Ipv6Addr) -> bool {
    let bits = u128::from(address);
    let in_network = |network: Ipv6Addr, length: u8| {
        let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
        bits & mask == u128::from(network)
    };
    if RESTRICTED_V6.iter().any(|&(network, length)| in_network(network, length)) {
        return true;
    }
    embedded_ipv4(address).is_some_and(is_restricted_v4)
}

/// The IPv4 address carried by an IPv4-mapped, NAT64, 6to4 or IPv4-compatible IPv6 address.
fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(address);
    let low_32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let top_96 = bits >> 32;
    if top_96 == 0xffff || top_96 == 0x0064_ff9b_0000_0000_0000_0000 || top_96 == 0 {
        return Some(low_32);
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted(text: &str) -> bool {
        is_restricted(text.parse().unwrap())
    }

    #[test]
    fn table_edges() {
        assert!(restricted("100.64.0.0"));
        assert!(restricted("100.127.255.255"));
        assert!(!restricted("100.128.0.0"));
        assert!(restricted("172.31.255.255"));
        assert!(!restricted("172.32.0.0"));
        assert!(restricted("198.19.255.255"));
        assert!(!restricted("198.20.0.0"));
        assert!(restricted("255.255.255.255"));
        assert!(!restricted("8.8.8.8"));
        assert!(restricted("100::ffff:ffff:ffff:ffff"));
        assert!(!restricted("100:0:0:1::"));
        assert!(restricted("fdff::1"));
        assert!(!restricted("fe00::1"));
        assert!(restricted("febf::1"));
        assert!(!restricted("fec0::1"));
        assert!(!restricted("2606:4700::1111"));
    }

    #[test]
    fn embedded_ipv4_is_judged_by_its_ipv4() {
        assert!(restricted("::ffff:127.0.0.1"));
        assert!(!restricted("::ffff:8.8.8.8"));
        assert!(restricted("64:ff9b::a9fe:a9fe"));
        assert!(!restricted("64:ff9b::808:808"));
        assert!(restricted("2002:7f00:1::"));
        assert!(!restricted("2002:808:808::1"));
        assert!(restricted("::127.0.0.1"));
        assert!(!restricted("::8.8.8.8"));
    }
}
