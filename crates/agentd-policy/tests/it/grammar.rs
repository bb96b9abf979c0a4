//! Load-time grammar rejections (`policy_bad_pattern`) of §3.1, §3.4 and §3.5.

use agentd_policy::{
    EnvPolicyConfig, FsPolicyConfig, HttpPolicyConfig, McpPolicyConfig, NamePattern, PathPattern, Policy, PolicyConfig,
    PolicyError, ShellPolicyConfig, UrlPattern, check_name_patterns, check_policy_syntax,
};

/// Asserts that `parse` rejects `pattern` with a reason containing `reason_part`.
fn rejects<T: std::fmt::Debug>(parse: fn(&str) -> Result<T, String>, pattern: &str, reason_part: &str) {
    match parse(pattern) {
        Ok(parsed) => panic!("accepted {pattern:?} as {parsed:?}"),
        Err(reason) => assert!(reason.contains(reason_part), "{pattern:?}: reason {reason:?} lacks {reason_part:?}"),
    }
}

#[test]
fn path_grammar_rejections() {
    let cases = [
        ("", "empty"),
        ("/a/**/b", "`**` is only allowed as the final segment"),
        ("**/x", "`**` is only allowed as the final segment"),
        ("/a/b**", "`**` is only allowed as the final segment"),
        ("/a/***", "`**` is only allowed as the final segment"),
        ("/a/?", "`?`"),
        ("/a/[x]", "`[`"),
        ("/a/x]", "`]`"),
        ("/a/{x,y}", "`{`"),
        ("/a/x}", "`}`"),
        ("/a/\0", "control"),
        ("/a/\u{7}", "control"),
        ("/a/\n", "control"),
        ("/a/\u{85}", "control"),
        ("~/x", "`~`"),
        ("~", "`~`"),
    ];
    for (pattern, reason) in cases {
        rejects(PathPattern::parse, pattern, reason);
    }
    #[cfg(not(windows))]
    rejects(PathPattern::parse, "C:\\data\\**", "`\\`");
}

#[test]
fn path_grammar_acceptances() {
    for pattern in [
        "*",
        "/**",
        "/*",
        "/srv/out/**",
        "/srv/out/*",
        "/var/log/app*",
        "/usr/local/bin/report",
        "/data/*/reports/**",
        "/logs/app-*.log",
        "out/**",
        "./a/~b",
        "/a/%2e%2e",
    ] {
        PathPattern::parse(pattern).unwrap_or_else(|reason| panic!("{pattern}: {reason}"));
    }
}

#[test]
fn name_grammar_rejections() {
    let cases = [
        ("", "empty"),
        ("a*b", "`*` is only allowed at the end"),
        ("*a", "`*` is only allowed at the end"),
        ("a**b*", "`*` is only allowed at the end"),
        ("APP\n", "control"),
        ("\0", "control"),
        ("A\u{7f}", "control"),
    ];
    for (pattern, reason) in cases {
        rejects(NamePattern::parse, pattern, reason);
    }
    for pattern in ["*", "**", "APP_*", "docs://**", "REGION", "a b"] {
        NamePattern::parse(pattern).unwrap_or_else(|reason| panic!("{pattern}: {reason}"));
    }
}

#[test]
fn url_grammar_rejections() {
    let cases = [
        ("", "empty"),
        ("api.example.com/**", "scheme://"),
        ("https:/api.example.com/**", "scheme://"),
        ("ftp://files.example.com/**", "scheme `ftp`"),
        ("file:///etc/passwd", "scheme `file`"),
        ("ws://api.example.com/**", "scheme `ws`"),
        ("https://user@api.example.com/**", "userinfo"),
        ("https://user:pass@api.example.com/**", "userinfo"),
        ("https://api.example.com/v1?x=1", "`?`"),
        ("https://api.example.com/v1/**#frag", "`#`"),
        ("https://api.example.com*", "`*` directly after the host"),
        ("https://*.example.*", "`*` directly after the host"),
        ("https://api.example.com/a/**/b", "path: `**` is only allowed as the final segment"),
        ("https://api.example.com/a/[x]", "path: `[`"),
        ("https://api.example.com/a/{x}", "path: `{`"),
        ("https://api.example.com/a\\b", "`\\`"),
        ("https://api.example.com/a b", "whitespace"),
        ("https://api.example.com/\u{7}", "control"),
        ("https://api.example.com:99999/", "port"),
        ("https://api.example.com:/", "port"),
        ("https://api.example.com:8o/", "port"),
        ("https://[::1/", "IPv6"),
        ("https://[::1]x/", "IPv6"),
        ("https://[fe80::*]/", "IPv6"),
        ("https://[fe80::1%25eth0]/", "IPv6"),
        ("https:///path", "host is empty"),
        ("https://a..b/", "label"),
        ("https://under_score.example.com/", "label"),
        ("https://*_x.example.com/", "label"),
    ];
    for (pattern, reason) in cases {
        rejects(UrlPattern::parse, pattern, reason);
    }
}

#[test]
fn url_grammar_acceptances() {
    for pattern in [
        "*",
        "https://*/**",
        "HTTPS://API.EXAMPLE.COM/v1/**",
        "https://*.example.com/**",
        "https://api.example.com",
        "https://api.example.com.",
        "http://127.0.0.1:18282/**",
        "http://[::1]:8080/x",
        "http://internal.corp/**",
        "https://api.example.com:*/**",
        "https://api.example.com/v1/app*",
        "https://api.example.com/data/*/reports/**",
        "https://*",
    ] {
        UrlPattern::parse(pattern).unwrap_or_else(|reason| panic!("{pattern}: {reason}"));
    }
}

#[test]
fn policy_syntax_names_list_index_and_pattern() {
    let config = PolicyConfig {
        fs: Some(FsPolicyConfig {
            read: vec!["/ok/**".to_owned()],
            write: vec!["/a/**".to_owned(), "/b".to_owned(), "/a/**/b".to_owned()],
            delete: vec!["~/x".to_owned()],
            list: vec![String::new()],
        }),
        env: Some(EnvPolicyConfig { read_keys: vec!["A*B".to_owned()] }),
        http: Some(HttpPolicyConfig {
            urls: vec!["ftp://x/".to_owned()],
            methods: vec!["GET".to_owned(), "GE T".to_owned()],
        }),
        shell: Some(ShellPolicyConfig { commands: vec!["/bin/{sh}".to_owned()] }),
        mcp: Some(McpPolicyConfig {
            servers: vec!["anything [goes]".to_owned()],
            tools: vec!["*x".to_owned()],
            resources: vec![String::new()],
        }),
        rego: None,
    };
    let errors = check_policy_syntax(&config);
    let located: Vec<(String, usize)> = errors.iter().map(|error| (error.list.clone(), error.index)).collect();
    assert_eq!(
        located,
        [
            ("[policy.fs].write".to_owned(), 2),
            ("[policy.fs].delete".to_owned(), 0),
            ("[policy.fs].list".to_owned(), 0),
            ("[policy.env].read_keys".to_owned(), 0),
            ("[policy.http].urls".to_owned(), 0),
            ("[policy.http].methods".to_owned(), 1),
            ("[policy.shell].commands".to_owned(), 0),
            ("[policy.mcp].tools".to_owned(), 0),
            ("[policy.mcp].resources".to_owned(), 0),
        ]
    );
    assert_eq!(errors[0].to_string(), "[policy.fs].write[2] `/a/**/b`: `**` is only allowed as the final segment");

    // Startup refuses the same table, with the same findings.
    let error = Policy::compile(Some(&config), std::path::Path::new("/")).unwrap_err();
    assert_eq!(error.code(), "policy_bad_pattern");
    let PolicyError::BadPatterns(findings) = &error;
    assert_eq!(findings, &errors);
    assert!(error.to_string().contains("[policy.mcp].resources[0] ``: pattern is empty"));
}

#[test]
fn mcp_server_allowlists_use_the_name_grammar() {
    let errors =
        check_name_patterns("mcp_servers[docs].allow_tools", &["search_*".to_owned(), "a*b".to_owned(), String::new()]);
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "mcp_servers[docs].allow_tools[1] `a*b`: `*` is only allowed at the end of a name pattern",
            "mcp_servers[docs].allow_tools[2] ``: pattern is empty",
        ]
    );
}
