//! URL normalisation, matching and the restricted-address rule (§3.5).
//!
//! Name resolution is the runtime's job: here the resolved addresses are given, as the injected
//! test resolver of the spec would give them (`internal.corp` -> 10.1.2.3, `rebind.example.com`
//! -> 127.0.0.1, `api.example.com` / `flip.example.com` -> a public address).

use std::net::IpAddr;
use std::path::Path;

use agentd_policy::{
    Decision, HttpPolicyConfig, NormalizedUrl, Policy, PolicyConfig, UrlPattern, UrlRejection, is_restricted,
    normalize_url,
};

const PUBLIC: &str = "93.184.216.34";

fn http_policy(urls: &[&str]) -> Policy {
    let config = PolicyConfig {
        http: Some(HttpPolicyConfig { urls: urls.iter().map(|url| (*url).to_owned()).collect(), methods: vec![] }),
        ..PolicyConfig::default()
    };
    Policy::compile(Some(&config), Path::new("/")).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The full pure pipeline: normalise, match, then the restricted-address rule with the given
/// resolution (an IP literal resolves to itself when `resolved` is empty).
fn decide(policy: &Policy, raw: &str, resolved: &[&str]) -> Result<Decision, UrlRejection> {
    let url = normalize_url(raw)?;
    let decision = policy.check_http("GET", &url);
    if !decision.allowed {
        return Ok(decision);
    }
    let addresses: Vec<IpAddr> = if resolved.is_empty() {
        url.ip_literal().into_iter().collect()
    } else {
        resolved.iter().map(|text| ip(text)).collect()
    };
    let restricted = policy.restricted_address_decision(&url, &addresses);
    Ok(if restricted.allowed { decision } else { restricted })
}

#[test]
fn url_table_of_the_spec() {
    let v1 = http_policy(&["https://api.example.com/v1/**"]);
    let not_listed = "URL not in [policy.http].urls";
    let rows: [(&str, Result<Option<&str>, UrlRejection>); 10] = [
        ("https://api.example.com/v1/items?q=1", Ok(None)),
        ("https://API.Example.COM./v1/x", Ok(None)),
        ("https://api.example.com/v1/../admin", Ok(Some(not_listed))),
        ("https://api.example.com/v1/%2e%2e/admin", Ok(Some(not_listed))),
        ("https://api.example.com/v1/..%2Fadmin", Err(UrlRejection::EncodedSeparatorOrDotSegment)),
        ("https://api.example.com.evil.net/v1/x", Ok(Some(not_listed))),
        ("https://api.example.com@evil.net/v1/x", Err(UrlRejection::Userinfo)),
        ("http://api.example.com/v1/x", Ok(Some(not_listed))),
        ("https://api.example.com:8443/v1/x", Ok(Some(not_listed))),
        ("https://api.example.com/v1/x\r\nHost: evil", Err(UrlRejection::ControlOrWhitespace)),
    ];
    for (raw, expected) in rows {
        let outcome = decide(&v1, raw, &[PUBLIC]);
        match (outcome, expected) {
            (Ok(decision), Ok(None)) => {
                assert!(decision.allowed, "{raw}: {decision:?}");
                assert_eq!(decision.rule.as_deref(), Some("https://api.example.com/v1/**"));
            }
            (Ok(decision), Ok(Some(reason))) => {
                assert!(!decision.allowed, "{raw}");
                assert_eq!(decision.reason, reason, "{raw}");
            }
            (Err(rejection), Err(expected)) => assert_eq!(rejection, expected, "{raw}"),
            (outcome, expected) => panic!("{raw}: got {outcome:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn normalised_forms_of_the_table_rows() {
    let url = normalize_url("https://API.Example.COM./v1/x").unwrap();
    assert_eq!(url.host, "api.example.com");
    assert_eq!(url.as_str(), "https://api.example.com/v1/x");
    assert_eq!(normalize_url("https://api.example.com/v1/../admin").unwrap().path, "/admin");
    assert_eq!(normalize_url("https://api.example.com/v1/%2e%2e/admin").unwrap().path, "/admin");
    assert_eq!(normalize_url("https://api.example.com/v1/%2E./admin").unwrap().path, "/admin");
    let url = normalize_url("https://api.example.com/v1/items?q=1#top").unwrap();
    assert_eq!(url.query.as_deref(), Some("q=1"));
    assert_eq!(url.as_str(), "https://api.example.com/v1/items?q=1");
    let url = normalize_url("https://api.example.com:8443/v1/x").unwrap();
    assert_eq!(url.port, 8443);
    assert_eq!(url.as_str(), "https://api.example.com:8443/v1/x");
}

#[test]
fn wildcard_host_reaching_loopback_is_denied() {
    let policy = http_policy(&["https://*.example.com/**"]);
    let decision = decide(&policy, "https://rebind.example.com/x", &["127.0.0.1"]).unwrap();
    assert!(!decision.allowed);
    assert_eq!(
        decision.reason,
        "host rebind.example.com resolves to restricted address 127.0.0.1; only an exact host entry may reach it"
    );
    // Any restricted address among several is enough.
    let decision = decide(&policy, "https://rebind.example.com/x", &[PUBLIC, "10.0.0.1"]).unwrap();
    assert!(!decision.allowed);
    // A public answer is allowed (pinning it for the connection is the runtime's job).
    let decision = decide(&policy, "https://flip.example.com/x", &[PUBLIC]).unwrap();
    assert!(decision.allowed);
    assert_eq!(decision.rule.as_deref(), Some("https://*.example.com/**"));
}

#[test]
fn star_pattern_cannot_reach_restricted_addresses() {
    let policy = http_policy(&["*"]);
    let metadata = decide(&policy, "http://169.254.169.254/latest/meta-data/", &[]).unwrap();
    assert_eq!(
        metadata.reason,
        "host 169.254.169.254 resolves to restricted address 169.254.169.254; only an exact host entry may reach it"
    );
    let decimal = normalize_url("http://2130706433/").unwrap();
    assert_eq!(decimal.host, "127.0.0.1");
    assert!(!decide(&policy, "http://2130706433/", &[]).unwrap().allowed);
    let mapped = decide(&policy, "http://[::ffff:127.0.0.1]/", &[]).unwrap();
    assert!(!mapped.allowed);
    assert!(mapped.reason.starts_with("host [::ffff:127.0.0.1] resolves to restricted address"));
    // `*` still allows public hosts, any path, any port.
    assert!(decide(&policy, "http://api.example.com:8080/x", &[PUBLIC]).unwrap().allowed);
}

#[test]
fn exact_host_entries_may_reach_restricted_addresses() {
    let internal = http_policy(&["http://internal.corp/**"]);
    let decision = decide(&internal, "http://internal.corp/status", &["10.1.2.3"]).unwrap();
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.rule.as_deref(), Some("http://internal.corp/**"));

    let literal = http_policy(&["http://127.0.0.1:18282/**"]);
    assert!(decide(&literal, "http://127.0.0.1:18282/one", &[]).unwrap().allowed);
    let localhost = decide(&literal, "http://localhost:18282/one", &["127.0.0.1"]).unwrap();
    assert!(!localhost.allowed);
    assert_eq!(localhost.reason, "URL not in [policy.http].urls");

    // An exact entry only helps the URLs it matches: a wildcard entry for the same host does not.
    let mixed = http_policy(&["http://internal.corp/status", "http://*.corp/**"]);
    assert!(decide(&mixed, "http://internal.corp/status", &["10.1.2.3"]).unwrap().allowed);
    assert!(!decide(&mixed, "http://internal.corp/admin", &["10.1.2.3"]).unwrap().allowed);
}

#[test]
fn ip_literals_resolve_to_themselves() {
    let policy = http_policy(&["*"]);
    let url = normalize_url("http://[::1]:8080/").unwrap();
    let decision = policy.restricted_address_decision(&url, &[]);
    assert!(!decision.allowed);
    assert_eq!(decision.reason, "host [::1] resolves to restricted address ::1; only an exact host entry may reach it");
}

#[test]
fn restricted_address_decision_without_restricted_addresses() {
    let policy = http_policy(&["https://*.example.com/**"]);
    let url = normalize_url("https://api.example.com/").unwrap();
    assert!(policy.restricted_address_decision(&url, &[ip(PUBLIC)]).allowed);
}

#[test]
fn names_host_exactly() {
    let exact = UrlPattern::parse("http://internal.corp/**").unwrap();
    assert!(exact.names_host_exactly("internal.corp"));
    assert!(!exact.names_host_exactly("other.corp"));
    assert!(!UrlPattern::parse("*").unwrap().names_host_exactly("internal.corp"));
    assert!(!UrlPattern::parse("http://*/**").unwrap().names_host_exactly("internal.corp"));
    assert!(!UrlPattern::parse("http://*.corp/**").unwrap().names_host_exactly("internal.corp"));
    assert!(UrlPattern::parse("http://[::1]/").unwrap().names_host_exactly("[::1]"));
}

#[test]
fn candidate_rejections() {
    let cases = [
        ("https://a.example/\u{0}", UrlRejection::ControlOrWhitespace),
        ("https://a.example/\tx", UrlRejection::ControlOrWhitespace),
        (" https://a.example/", UrlRejection::ControlOrWhitespace),
        ("https://a.example/x y", UrlRejection::ControlOrWhitespace),
        ("https://a.example/\u{a0}", UrlRejection::ControlOrWhitespace),
        ("https://a.example/\u{2028}", UrlRejection::ControlOrWhitespace),
        ("https://a.example/\u{3000}", UrlRejection::ControlOrWhitespace),
        ("https://a.example/\u{7f}", UrlRejection::ControlOrWhitespace),
        ("not a url", UrlRejection::ControlOrWhitespace),
        ("not-a-url", UrlRejection::NotHttp),
        ("ftp://a.example/", UrlRejection::NotHttp),
        ("file:///etc/passwd", UrlRejection::NotHttp),
        ("javascript:alert(1)", UrlRejection::NotHttp),
        ("https://", UrlRejection::NotHttp),
        ("http://[fe80::1%25eth0]/", UrlRejection::NotHttp),
        ("http://[::1/", UrlRejection::NotHttp),
        ("http://./", UrlRejection::NotHttp),
        ("https://user:pass@a.example/", UrlRejection::Userinfo),
        ("https://user@a.example/", UrlRejection::Userinfo),
        ("https://@a.example/", UrlRejection::Userinfo),
        ("https://:@a.example/", UrlRejection::Userinfo),
        ("https:user@a.example/", UrlRejection::Userinfo),
        ("https://a.example/%2F", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/a%2fb", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/a%5Cb", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/a%5cb", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/a%00", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/%252e%252e/x", UrlRejection::EncodedSeparatorOrDotSegment),
        ("https://a.example/a%252Fb", UrlRejection::EncodedSeparatorOrDotSegment),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize_url(raw), Err(expected), "{raw:?}");
    }
}

#[test]
fn rejection_texts_are_the_rule_reasons_of_section_6() {
    assert_eq!(UrlRejection::ControlOrWhitespace.to_string(), "URL contains control or whitespace characters");
    assert_eq!(UrlRejection::NotHttp.to_string(), "URL is not a valid http(s) URL");
    assert_eq!(UrlRejection::Userinfo.to_string(), "URL has userinfo");
    assert_eq!(
        UrlRejection::EncodedSeparatorOrDotSegment.to_string(),
        "URL path has an encoded separator or dot segment"
    );
}

#[test]
fn candidate_normalisation() {
    let cases: [(&str, NormalizedUrl); 6] = [
        (
            "HTTP://0x7f.1:8080/A/b/./c/../d?x=%2f#frag",
            NormalizedUrl {
                scheme: "http".into(),
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/A/b/d".into(),
                query: Some("x=%2f".into()),
            },
        ),
        (
            "http://127.1/",
            NormalizedUrl { scheme: "http".into(), host: "127.0.0.1".into(), port: 80, path: "/".into(), query: None },
        ),
        (
            "https://[0:0:0:0:0:FFFF:7F00:1]",
            NormalizedUrl {
                scheme: "https".into(),
                host: "[::ffff:127.0.0.1]".into(),
                port: 443,
                path: "/".into(),
                query: None,
            },
        ),
        (
            "https://bücher.de/caf%c3%a9/é",
            NormalizedUrl {
                scheme: "https".into(),
                host: "xn--bcher-kva.de".into(),
                port: 443,
                path: "/caf%C3%A9/%C3%A9".into(),
                query: None,
            },
        ),
        (
            "https://a.example/x?",
            NormalizedUrl {
                scheme: "https".into(),
                host: "a.example".into(),
                port: 443,
                path: "/x".into(),
                query: Some(String::new()),
            },
        ),
        (
            "https://a.example:443/%7e",
            NormalizedUrl {
                scheme: "https".into(),
                host: "a.example".into(),
                port: 443,
                path: "/%7E".into(),
                query: None,
            },
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize_url(raw).as_ref(), Ok(&expected), "{raw}");
    }
    let url = normalize_url("https://[::1]:8443/x").unwrap();
    assert_eq!(url.ip_literal(), Some(ip("::1")));
    assert_eq!(url.host_for_resolution(), "::1");
    assert_eq!(url.as_str(), "https://[::1]:8443/x");
    assert_eq!(normalize_url("https://a.example/").unwrap().ip_literal(), None);
}

#[test]
fn path_patterns_inside_urls() {
    let policy = http_policy(&[
        "https://api.example.com/data/*/reports/**",
        "https://api.example.com/logs/app*",
        "https://api.example.com/caf%c3%a9/**",
    ]);
    for (raw, allowed) in [
        ("https://api.example.com/data/eu/reports/q1/a.csv", true),
        ("https://api.example.com/data/eu/x/reports/a", false),
        ("https://api.example.com/logs/app/x", true),
        ("https://api.example.com/logs/apple", true),
        ("https://api.example.com/logs/ap", false),
        ("https://api.example.com/café/menu", true),
        ("https://api.example.com/caf%C3%A9", true),
    ] {
        assert_eq!(decide(&policy, raw, &[PUBLIC]).unwrap().allowed, allowed, "{raw}");
    }
}

#[test]
fn restricted_address_table() {
    let restricted = [
        "0.0.0.0",
        "0.255.255.255",
        "10.0.0.1",
        "100.64.0.1",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "100::1",
        "2001:db8::1",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:a00:1::",
    ];
    for address in restricted {
        assert!(is_restricted(ip(address)), "{address} should be restricted");
    }
    let public = [
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:db9::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
        "fe00::1",
        "fec0::1",
    ];
    for address in public {
        assert!(!is_restricted(ip(address)), "{address} should not be restricted");
    }
}
