//! The client address a request is charged to: the socket peer, unless the peer is a trusted
//! proxy; then `Forwarded: for=` (RFC 7239) or `X-Forwarded-For`, walked from the right to the
//! first address that is not a trusted proxy. Headers from untrusted peers are ignored, so
//! spoofing them gains nothing.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Parses a trusted proxy entry: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_trusted_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{entry}` is not an IP address or CIDR block"))
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One hop as a proxy wrote it: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `2001:db8::1`,
/// optionally quoted. `None` for obfuscated identifiers (`unknown`, `_hidden`) and garbage.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"').trim();
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = raw.strip_prefix('[')?.split(']').next()?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The `for=` values of every `Forwarded` header, in order (leftmost first).
fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            // An unreadable header breaks the chain: treat it as an unparsable hop.
            hops.push("");
            continue;
        };
        for element in value.split(',') {
            let found = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then_some(value)
            });
            hops.push(found.unwrap_or(""));
        }
    }
    hops
}

/// The entries of every `X-Forwarded-For` header, in order (leftmost first).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(value) => hops.extend(value.split(',')),
            Err(_) => hops.push(""),
        }
    }
    hops
}

/// The address to charge: see the module comment. With a trusted peer, `Forwarded` wins when it
/// names any hop, else `X-Forwarded-For`. An unparsable hop stops the walk at the last trusted
/// address seen (whoever wrote the garbage is not trusted to name a client); a chain made only of
/// trusted proxies yields its leftmost entry.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return peer;
    }
    let forwarded = forwarded_for(headers);
    let hops = if forwarded.is_empty() {
        x_forwarded_for(headers)
    } else {
        forwarded
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            return ip;
        }
    }
    client
}

/// The rate-limit key for an address: IPv4 addresses as they are, IPv6 addresses by their /64
/// (one subscriber usually holds a whole /64, so per-address keys would let one client mint
/// unlimited buckets).
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let prefix = Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            );
            format!("{prefix}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| parse_trusted_proxy(s).expect("test cidr"))
            .collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
        assert_eq!(
            client_ip(ip("9.9.9.9"), &h, &nets(&["10.0.0.0/8"])),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn a_trusted_peer_is_walked_from_the_right_to_the_first_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.2")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        // Several headers are one list, in order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4:5555, 10.1.1.1"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        // Only trusted hops: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.8")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.7"));
        // No header: the peer itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, nonsense, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_is_preferred_and_understands_quotes_ports_and_ipv6() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "5.5.5.5"),
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.3",
            ),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "For=\"192.0.2.43:47011\";by=10.0.0.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("192.0.2.43"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_addresses_are_canonical_and_ipv6_is_keyed_by_its_64() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(ip_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("2001:db8:1:2:ffff::1")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("::ffff:1.2.3.4")), "1.2.3.4");
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxy("proxy.local").is_err());
        assert_eq!(
            parse_trusted_proxy(" 10.1.2.3/8 ")
                .expect("cidr")
                .to_string(),
            "10.0.0.0/8"
        );
    }

    proptest! {
        /// Whatever an untrusted peer sends, it is charged as itself; whatever a client puts on
        /// the left of a chain, a trusted proxy's appended address wins.
        #[test]
        fn spoofed_headers_never_change_the_key(
            xff in "[ -~]{0,200}",
            fwd in "[ -~]{0,200}",
            a in any::<u8>(), b in any::<u8>(),
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.append("x-forwarded-for", v); }
            if let Ok(v) = HeaderValue::from_str(&fwd) { h.append("x-forwarded-for", v); }
            let peer = IpAddr::from([203, 0, a, b]);
            prop_assert_eq!(client_ip(peer, &h, &nets(&["10.0.0.0/8"])), peer);

            let real = IpAddr::from([198, 51, a, b]);
            h.append("x-forwarded-for", HeaderValue::from_str(&real.to_string()).expect("ip"));
            prop_assert_eq!(client_ip(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])), real);
        }
    }
}
