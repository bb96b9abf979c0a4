//! Property tests of the matchers and normalisers: they face untrusted input.

use std::path::{Path, PathBuf};

use agentd_policy::{NamePattern, PathPattern, UrlPattern, lexical_normalize, normalize_url};
use proptest::prelude::*;

/// Path segments biased towards the interesting ones.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("safe".to_owned()),
        Just("safe2".to_owned()),
        Just("w".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("...".to_owned()),
        "[a-z.]{1,4}",
        "[^/\u{0}]{1,6}",
    ]
}

fn relative_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 0..10).prop_map(|segments| segments.join("/"))
}

/// The `/`-separated segments of an absolute path; `/` has none.
fn segments_of(path: &Path) -> Vec<String> {
    let text = path.to_string_lossy().into_owned();
    let rest = text.strip_prefix('/').unwrap_or(&text).to_owned();
    if rest.is_empty() { Vec::new() } else { rest.split('/').map(str::to_owned).collect() }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lexical_normalize_is_rooted_and_free_of_dot_segments(
        absolute in any::<bool>(),
        path in relative_path(),
        cwd in relative_path(),
    ) {
        let requested = if absolute { format!("/{path}") } else { path };
        let cwd = PathBuf::from(format!("/{cwd}"));
        match lexical_normalize(Path::new(&requested), &cwd) {
            None => prop_assert!(requested.is_empty()),
            Some(normalized) => {
                prop_assert!(normalized.to_string_lossy().starts_with('/'));
                for segment in segments_of(&normalized) {
                    prop_assert!(
                        !segment.is_empty() && segment != "." && segment != "..",
                        "{normalized:?} has segment {segment:?}"
                    );
                }
                // Normalising is idempotent.
                prop_assert_eq!(lexical_normalize(&normalized, Path::new("/")), Some(normalized.clone()));
            }
        }
    }

    #[test]
    fn subtree_patterns_never_match_an_escape(
        base in proptest::collection::vec("[a-z]{1,3}", 1..4),
        glob in any::<bool>(),
        tail in relative_path(),
    ) {
        let base = format!("/{}", base.join("/"));
        let pattern = PathPattern::parse(&format!("{base}/{}", if glob { "*" } else { "**" })).unwrap();
        let candidate = lexical_normalize(Path::new(&format!("{base}/{tail}")), Path::new("/")).unwrap();
        let inside = candidate.starts_with(&base);
        prop_assert_eq!(
            pattern.matches(&candidate),
            inside,
            "pattern {} candidate {:?}", pattern, candidate
        );
    }

    #[test]
    fn literal_patterns_match_only_themselves(
        base in proptest::collection::vec("[a-z]{1,3}", 1..4),
        tail in relative_path(),
    ) {
        let base = format!("/{}", base.join("/"));
        let pattern = PathPattern::parse(&base).unwrap();
        let candidate = lexical_normalize(Path::new(&format!("{base}/{tail}")), Path::new("/")).unwrap();
        prop_assert_eq!(pattern.matches(&candidate), candidate == Path::new(&base));
    }

    #[test]
    fn prefix_patterns_are_string_prefixes(
        base in "/[a-z]{1,3}(/[a-z]{1,3}){0,2}",
        tail in relative_path(),
    ) {
        let pattern = PathPattern::parse(&format!("{base}*")).unwrap();
        let candidate = lexical_normalize(Path::new(&format!("{base}{tail}")), Path::new("/")).unwrap();
        let as_text = candidate.to_string_lossy().into_owned();
        prop_assert_eq!(pattern.matches(&candidate), as_text.starts_with(&base));
    }

    #[test]
    fn normalize_url_never_panics(raw in any::<String>()) {
        let _ = normalize_url(&raw);
    }

    #[test]
    fn normalized_urls_are_stable(
        scheme in prop_oneof![Just("http"), Just("https"), Just("HTTPS"), Just("ftp")],
        userinfo in prop_oneof![Just(""), Just("u@"), Just("u:p@"), Just("@")],
        host in prop_oneof![
            "[a-zA-Z0-9-]{1,8}(\\.[a-zA-Z0-9-]{1,8}){0,3}\\.?",
            Just("2130706433".to_owned()),
            Just("0x7f.1".to_owned()),
            Just("[::ffff:10.0.0.1]".to_owned()),
            Just("bücher.de".to_owned()),
        ],
        port in prop_oneof![Just(String::new()), Just(":80".to_owned()), Just(":443".to_owned()), Just(":8080".to_owned()), Just(":".to_owned())],
        path in proptest::collection::vec(
            prop_oneof![
                Just("..".to_owned()), Just(".".to_owned()), Just("%2e".to_owned()),
                Just("%2E%2e".to_owned()), Just("%2f".to_owned()), Just("%5C".to_owned()),
                Just("%252e".to_owned()), Just("%".to_owned()), Just("é".to_owned()),
                "[a-zA-Z0-9%._~*-]{0,6}",
            ],
            0..6,
        ),
        query in prop_oneof![Just(String::new()), "\\?[a-z=&%0-9]{0,8}"],
        fragment in prop_oneof![Just(String::new()), "#[a-z]{0,4}"],
    ) {
        let raw = format!("{scheme}://{userinfo}{host}{port}/{}{query}{fragment}", path.join("/"));
        if let Ok(url) = normalize_url(&raw) {
            prop_assert!(url.scheme == "http" || url.scheme == "https");
            prop_assert!(userinfo.is_empty());
            prop_assert!(url.path.starts_with('/'));
            prop_assert!(!url.host.ends_with('.'));
            prop_assert_eq!(url.host.to_ascii_lowercase(), url.host.clone());
            for segment in url.path.split('/') {
                prop_assert!(segment != "." && segment != "..");
            }
            // The URL that is sent normalises to itself: checking it again changes nothing.
            prop_assert_eq!(normalize_url(&url.as_str()), Ok(url.clone()));
            // `*` matches every normalised URL.
            prop_assert!(UrlPattern::parse("*").unwrap().matches(&url));
        }
    }

    #[test]
    fn pattern_parsers_never_panic(pattern in any::<String>(), candidate in any::<String>()) {
        if let Ok(parsed) = NamePattern::parse(&pattern) {
            let _ = parsed.matches(&candidate);
        }
        if let Ok(parsed) = PathPattern::parse(&pattern) {
            let _ = parsed.matches(Path::new(&candidate));
            let _ = parsed.anchored(Path::new("/nonexistent-agentd-policy-test"));
        }
        if let Ok(parsed) = UrlPattern::parse(&pattern)
            && let Ok(url) = normalize_url(&candidate)
        {
            let _ = parsed.matches(&url);
        }
    }

    #[test]
    fn pattern_parsers_never_panic_on_pattern_like_input(
        pattern in "[*/.a~?\\[\\]{}\\\\:@#%-]{0,12}",
        url_pattern in "(https?|ftp)://[a-z*.\\[\\]:0-9@]{0,10}[/a-z*.%?#]{0,10}",
    ) {
        let _ = NamePattern::parse(&pattern);
        if let Ok(parsed) = PathPattern::parse(&pattern) {
            prop_assert!(parsed.matches(Path::new("/")) || !parsed.is_any());
        }
        let _ = UrlPattern::parse(&url_pattern);
    }

    #[test]
    fn name_prefix_patterns(prefix in "[A-Z_]{1,6}", name in "[A-Z_]{0,8}") {
        let pattern = NamePattern::parse(&format!("{prefix}*")).unwrap();
        prop_assert_eq!(pattern.matches(&name), name.starts_with(&prefix));
        let exact = NamePattern::parse(&prefix).unwrap();
        prop_assert_eq!(exact.matches(&name), name == prefix);
    }
}
