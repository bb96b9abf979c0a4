//! Bad input never panics and never exhausts the stack: arbitrary text, mutated corpus files,
//! huge values, deep nesting, very large graphs, binary garbage, NUL bytes and fields of the
//! wrong type all end in `Ok` or a diagnostic. Every diagnostic is also located and rendered,
//! because the CLI does that with whatever the loader returns.

use std::sync::LazyLock;

use agentd_workflow::{LoadFailure, SourceFile, Workflow};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::support::{
    DiskFiles, MemoryFiles, corpus_files, diagnostics, error_codes, load_text, load_text_with, report,
};

/// The text of every valid corpus file.
static VALID_TEXTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    corpus_files("valid").iter().map(|p| std::fs::read_to_string(p).expect("readable corpus file")).collect()
});

/// Loads `text` and exercises everything the CLI does with the result.
fn load_and_render(text: &str) -> (SourceFile, Result<Workflow, LoadFailure>) {
    let (source, result) = load_text(text);
    for diagnostic in diagnostics(&result) {
        let rendered = diagnostic.render(&source);
        assert!(rendered.starts_with(&format!("{}[{}]", level(diagnostic), diagnostic.code)));
        assert!(!rendered.contains('\0'), "rendered output must not carry raw control characters");
        if let Some(location) = diagnostic.location(&source) {
            assert!(location.line >= 1 && location.column >= 1);
        }
    }
    (source, result)
}

/// [`load_and_render`] when only "it returned" matters.
fn never_panics(text: &str) {
    let (_, result) = load_and_render(text);
    // Whatever came back is a complete answer: a workflow or at least one diagnostic.
    assert!(result.is_ok() || !diagnostics(&result).is_empty());
}

fn level(diagnostic: &agentd_workflow::Diagnostic) -> &'static str {
    match diagnostic.severity {
        agentd_workflow::Severity::Error => "error",
        agentd_workflow::Severity::Warning => "warning",
    }
}

/// Pieces of workflow syntax, so generated documents get past the tokenizer often enough to
/// reach the loader and the validator.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name = \"w\"\n".to_string()),
        Just("[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n".to_string()),
        Just("[[nodes]]\n".to_string()),
        Just("[[edges]]\n".to_string()),
        Just("[[triggers]]\ntype = \"cron\"\n".to_string()),
        Just("[[http_routes]]\n".to_string()),
        Just("[[workflows]]\n".to_string()),
        Just("[policy.fs]\n".to_string()),
        Just("[auth.bearer.ops]\n".to_string()),
        Just("[[secrets]]\nsource = \"env\"\n".to_string()),
        prop::sample::select(agentd_workflow::KIND_NAMES.to_vec()).prop_map(|k| format!("type = \"{k}\"\n")),
        prop::sample::select(vec!["a", "b", "trigger", "", "é", "a.b"]).prop_map(|id| format!("id = \"{id}\"\n")),
        prop::sample::select(vec!["from", "to", "when", "expr", "start_node", "entry_node", "server", "schedule"])
            .prop_map(|k| format!("{k} = \"a\"\n")),
        prop::sample::select(vec!["max_steps", "max_items", "status", "max_iterations", "capacity", "timeout_secs"])
            .prop_map(|k| format!("{k} = 0\n")),
        Just("headers = { \"X\" = \"{{secret:\" }\n".to_string()),
        Just("output_schema = { properties = { label = { enum = [\"a\", 1] } } }\n".to_string()),
        Just("tools = [\"read_file\", 3]\n".to_string()),
        Just("read = [\"/a/**/b\", \"\"]\n".to_string()),
        Just("rate_limit = { capacity = -1, per_second = nan }\n".to_string()),
        Just("temperature = inf\n".to_string()),
        "[ -~]{0,12}".prop_map(|s| s + "\n"),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

/// One change to a document.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the text at a byte.
    Truncate(Index),
    /// Insert bytes at a byte position.
    Insert(Index, Vec<u8>),
    /// Remove one line.
    DeleteLine(Index),
    /// Repeat one line.
    DuplicateLine(Index),
    /// Overwrite one byte.
    Replace(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
    ]
}

/// Applies mutations to the bytes of `text`; invalid UTF-8 is replaced as a reader would.
fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        match mutation {
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
            Mutation::Insert(at, inserted) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Replace(at, byte) if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::Replace(..) => {}
            Mutation::DeleteLine(line) | Mutation::DuplicateLine(line) => {
                let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let at = line.index(lines.len());
                if matches!(mutation, Mutation::DeleteLine(_)) {
                    lines.remove(at);
                } else {
                    let copy = lines[at].clone();
                    lines.insert(at, copy);
                }
                bytes = lines.join(&b'\n');
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        never_panics(&text);
    }

    #[test]
    fn documents_of_workflow_fragments_never_panic(fragments in prop::collection::vec(fragment(), 0..48)) {
        never_panics(&fragments.concat());
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        file in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = &VALID_TEXTS[file.index(VALID_TEXTS.len())];
        never_panics(&mutate(text, &mutations));
    }
}

#[test]
fn every_valid_corpus_file_truncated_at_every_line_never_panics() {
    for text in VALID_TEXTS.iter() {
        let mut end = 0;
        for line in text.split_inclusive('\n') {
            end += line.len();
            never_panics(&text[..end]);
            // Also cut inside the line, where strings and tables are left open.
            never_panics(&text[..end - line.len() / 2]);
        }
    }
}

#[test]
fn a_ten_megabyte_string_value_loads() {
    let big = "x".repeat(10 * 1024 * 1024);
    let text = format!(
        "name = \"big\"\ndescription = \"{big}\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"t\"\ntype = \"template_render\"\ntemplate = '{big}'\n"
    );
    let (_, result) = load_and_render(&text);
    let workflow = result.expect("a large value is still a valid workflow");
    assert_eq!(workflow.description.map(|d| d.len()), Some(big.len()));
}

#[test]
fn a_ten_megabyte_line_is_rendered_cut_short() {
    let big = "y".repeat(10 * 1024 * 1024);
    let (source, result) = load_and_render(&format!("name = \"big\"\nbogus = \"{big}\"\n"));
    assert_eq!(error_codes(&result), ["unknown_key"]);
    let rendered = diagnostics(&result)[0].render(&source);
    assert!(rendered.len() < 2_000, "the source line is cut short in the output ({} bytes)", rendered.len());
}

#[test]
fn deeply_nested_arrays_are_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let text = format!("name = \"deep\"\na = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let (_, result) = load_and_render(&text);
    assert_eq!(error_codes(&result), ["toml_syntax"]);
}

#[test]
fn deeply_nested_inline_tables_are_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let text = format!("name = \"deep\"\na = {}1{}\n", "{ b = ".repeat(depth), " }".repeat(depth));
    let (_, result) = load_and_render(&text);
    assert_eq!(error_codes(&result), ["toml_syntax"]);
}

#[test]
fn very_long_dotted_keys_and_table_headers_are_an_error_not_a_stack_overflow() {
    let keys = vec!["k"; 100_000].join(".");
    for text in [
        format!("name = \"deep\"\n{keys} = 1\n"),
        format!("name = \"deep\"\n[{keys}]\nz = 1\n"),
        format!("name = \"deep\"\n[policy.rego]\ndata.{keys} = 1\n"),
        format!(
            "name = \"deep\"\n[[nodes]]\nid = \"n\"\ntype = \"llm_infer\"\nbackend = \"default\"\nprompt = \"p\"\noutput_schema.{keys} = 1\n"
        ),
    ] {
        let (_, result) = load_and_render(&text);
        assert_eq!(error_codes(&result), ["toml_syntax"]);
    }
}

#[test]
fn the_deepest_nesting_toml_accepts_reaches_the_model_safely() {
    // Just under the parser's limit, nested values reach serde_json (Rego data, inline schemas)
    // and the schema walk of the switch warning.
    let depth = 60;
    let nested = format!("{}\"leaf\"{}", "{ properties = { a = ".repeat(depth / 2), " } }".repeat(depth / 2));
    let text = format!(
        "name = \"deep\"\n[policy.rego]\ninline = \"package agent\"\ndata = {}1{}\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"llm_infer\"\nbackend = \"default\"\nprompt = \"p\"\noutput_schema = {nested}\n[[nodes]]\nid = \"s\"\ntype = \"switch\"\nexpr = \"c.parsed.{}\"\n[[edges]]\nfrom = \"c\"\nto = \"s\"\n",
        "{ d = ".repeat(depth),
        " }".repeat(depth),
        vec!["a"; depth / 2].join("."),
    );
    // Either outcome is acceptable; what matters is that it returns.
    never_panics(&text);
}

#[test]
fn a_deeply_nested_schema_file_is_a_warning_not_a_crash() {
    for depth in [50, 200, 100_000] {
        let schema =
            format!("{}{{\"enum\": [\"x\"]}}{}", "{\"properties\": {\"a\": ".repeat(depth), "}}".repeat(depth));
        let files = MemoryFiles::default().with("/work/schema.json", &schema);
        let path = vec!["a"; depth.min(1_000)].join(".");
        let text = format!(
            "name = \"deep\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"c\"\ntype = \"llm_infer\"\nbackend = \"default\"\nprompt = \"p\"\noutput_schema = \"schema.json\"\n[[nodes]]\nid = \"s\"\ntype = \"switch\"\nexpr = \"c.parsed.{path}\"\n[[edges]]\nfrom = \"c\"\nto = \"s\"\n"
        );
        let (_, result) = load_text_with(&text, false, &files);
        assert!(result.is_ok(), "depth {depth}: schema problems are warnings only");
    }
}

#[test]
fn fifty_thousand_nodes_load_and_validate() {
    let count = 50_000;
    let mut text = String::from("name = \"huge\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n");
    for i in 0..count {
        text.push_str(&format!("[[nodes]]\nid = \"n{i}\"\ntype = \"merge\"\n"));
    }
    for i in 1..count {
        text.push_str(&format!("[[edges]]\nfrom = \"n{}\"\nto = \"n{i}\"\n", i - 1));
    }
    let (_, result) = load_and_render(&text);
    let workflow = result.expect("a long chain is valid");
    assert_eq!(workflow.nodes.len(), count);
    assert_eq!(workflow.start("main").and_then(|s| s.entry), Some(0));

    // The same graph closed into one big cycle: one `cycle` error naming all 50 000 nodes.
    text.push_str(&format!("[[edges]]\nfrom = \"n{}\"\nto = \"n0\"\n", count - 1));
    let (_, result) = load_and_render(&text);
    assert_eq!(error_codes(&result)[0], "cycle");
}

#[test]
fn fifty_thousand_bad_nodes_are_all_reported() {
    let count = 50_000;
    let mut text = String::from("name = \"huge\"\n");
    for i in 0..count {
        text.push_str(&format!("[[nodes]]\nid = \"n{i}\"\ntype = \"merge\"\nbogus = {i}\n"));
    }
    let (_, result) = load_and_render(&text);
    assert_eq!(error_codes(&result).len(), count);
}

/// Deterministic pseudo-random bytes (xorshift), so the test is reproducible.
fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_a_syntax_error() {
    for seed in 1..=32u64 {
        let text = String::from_utf8_lossy(&garbage(64 * 1024, seed)).into_owned();
        let (_, result) = load_and_render(&text);
        assert!(result.is_err(), "seed {seed}");
    }
    // Garbage after a valid document, and a valid document after garbage.
    let valid = &VALID_TEXTS[0];
    let noise = String::from_utf8_lossy(&garbage(4096, 99)).into_owned();
    for text in [format!("{valid}\n{noise}"), format!("{noise}\n{valid}")] {
        let (_, result) = load_and_render(&text);
        assert!(result.is_err());
    }
}

#[test]
fn nul_bytes_never_panic_and_are_never_echoed_raw() {
    let cases = [
        "\0",
        "name = \"a\0b\"\n",
        "name\0 = \"x\"\n",
        "name = \"x\" # comment \0\n",
        "name = \"x\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\0\"\n",
        "\0\0\0name = \"x\"\n",
    ];
    for text in cases {
        let (_, result) = load_and_render(text);
        let codes = error_codes(&result);
        assert!(!codes.is_empty() && codes.iter().all(|c| *c == "toml_syntax"), "{text:?}: {codes:?}");
    }
    // An escaped NUL is legal TOML and an ordinary character of the value.
    let (_, result) = load_and_render(
        "name = \"nul\\u0000name\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"a\\u0000b\"\ntype = \"merge\"\n",
    );
    let workflow = result.expect("escaped NUL is valid");
    assert_eq!(workflow.name, "nul\0name");
    // In a header value it is a control character but not CR/LF: only the name check applies.
    let (_, result) = load_and_render(
        "name = \"h\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"f\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\nheaders = { \"X-\\u0000\" = \"v\" }\n",
    );
    assert_eq!(error_codes(&result), ["http_header_bad_name"]);
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark_are_handled() {
    for text in VALID_TEXTS.iter() {
        let crlf = text.replace('\n', "\r\n");
        let (_, lf_result) = load_text_with(text, false, &DiskFiles);
        let (_, crlf_result) = load_text_with(&crlf, false, &DiskFiles);
        assert_eq!(error_codes(&lf_result), error_codes(&crlf_result));
        never_panics(&format!("\u{feff}{text}"));
    }
}

/// Per kind: every kind-specific field with a value of the wrong type.
const WRONG_KIND_FIELDS: &[(&str, &str)] = &[
    ("condition", "expr = 1"),
    ("switch", "expr = [\"a\"]"),
    ("merge", "expr = \"merge has no fields\""),
    ("fail", "reason = false"),
    ("terminate", "reason = 1"),
    ("pause_for_approval", "reason = { text = \"x\" }"),
    ("respond", "body_template = 1\nstatus = \"200\"\ncontent_type = 7\ninput_from = []"),
    ("parse_json", "input_from = 1.5"),
    ("json_select", "input_from = true\npath = 3"),
    ("template_render", "template = [\"a\"]\ninput_from = 2"),
    ("diff_compute", "left_from = 1\nright_from = 2"),
    ("read_file", "path_from = {}"),
    ("write_file", "path_from = 1\ncontent_from = 2"),
    ("create_dir", "path_from = [1]"),
    ("read_env", "key = 42"),
    ("http_request", "method = 1\nurl_from = 2\nbody_from = 3\nheaders = \"Authorization: x\""),
    ("shell_run", "command = [\"/bin/ls\"]\nargs_from = 1\ntimeout_secs = \"30\""),
    ("call_mcp_tool", "tool = 1\nargs_from = 2\nserver = 3"),
    ("read_mcp_resource", "resource_from = 1\nserver = 2"),
    (
        "llm_infer",
        "backend = 1\nprompt = 2\ninput_from = 3\noutput_schema = 4\noutput_repairs = \"1\"\nmax_tokens = -5\ntemperature = \"hot\"",
    ),
    (
        "agent_loop",
        "backend = 1\ninstructions = 2\ninstructions_from = 3\ntools = \"read_file\"\nmax_steps = \"8\"\nmax_tokens = -1\nstep_max_tokens = 1.5\ntemperature = \"x\"\nmax_result_bytes = \"big\"",
    ),
    ("call", "workflow = 1\ninput_from = 2\nstart = 3"),
    ("parallel", "branches = { workflow = \"a.toml\" }"),
    ("map", "items_from = 1\nworkflow = 2\nmax_items = -1\nmax_concurrent = \"4\"\nstart = 5"),
];

#[test]
fn every_field_of_the_wrong_type_is_a_load_error() {
    assert_eq!(WRONG_KIND_FIELDS.len(), agentd_workflow::KIND_NAMES.len());
    let mut text = String::from("name = \"wrong_types\"\n");
    for (kind, fields) in WRONG_KIND_FIELDS {
        // Common fields of the right type: each node reports the first bad kind field.
        text.push_str(&format!("\n[[nodes]]\nid = \"bad_{kind}\"\ntype = \"{kind}\"\n{fields}\n"));
    }
    // Common fields of the wrong type, on a node whose own fields are fine.
    text.push_str("\n[[nodes]]\nid = 5\ntype = \"merge\"\n");
    text.push_str("\n[[nodes]]\nid = \"r\"\ntype = \"merge\"\nretry = 3\n");
    text.push_str("\n[[nodes]]\nid = \"t\"\ntype = \"merge\"\ntimeout_secs = \"10\"\n");
    text.push_str("\n[[nodes]]\nid = \"d\"\ntype = \"merge\"\ndescription = [\"x\"]\n");
    text.push_str("\n[[nodes]]\nid = \"ty\"\ntype = 3\n");
    let (source, result) = load_and_render(&text);
    let Err(LoadFailure::Load(found)) = &result else { panic!("must be a load error: {result:?}") };
    // One finding per node: every node is reported, none hides the next.
    assert_eq!(found.len(), WRONG_KIND_FIELDS.len() + 5, "{}", report(&source, &result));
    insta::assert_snapshot!(report(&source, &result));
}
