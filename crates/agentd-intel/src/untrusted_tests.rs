//! Property tests: every parser fed by a backend, a script file or a header value returns an
//! error instead of panicking, whatever the input.

use proptest::prelude::*;

use crate::config::{Provider, endpoint};
use crate::jsonrpc::parse_response;
use crate::providers::ProviderClient;
use crate::schema::parse_json_answer;
use crate::scripted::Script;
use crate::secrets::HeaderTemplate;

/// JSON-ish text: mostly structural characters, so the parsers get past the first byte.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r#"[\[\]{}",:0-9a-z\\ \n`.-]{0,64}"#).expect("regex")
}

fn client(provider: Provider) -> ProviderClient {
    let settings = crate::config::Settings::default();
    let url = endpoint(provider, "http://127.0.0.1:9", "m").expect("endpoint");
    ProviderClient::new(provider, "m".into(), url, None, Vec::new(), &settings).expect("client")
}

proptest! {
    #[test]
    fn rpc_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), text in jsonish(), id in 1u64..10) {
        let _ = parse_response(&bytes, id);
        let _ = parse_response(text.as_bytes(), id);
    }

    #[test]
    fn provider_answers_never_panic(text in jsonish()) {
        for provider in [Provider::Anthropic, Provider::OpenAi, Provider::Gemini, Provider::OpenAiCompatible] {
            let _ = client(provider).parse_for_tests(text.as_bytes());
        }
    }

    #[test]
    fn answers_and_templates_never_panic(text in ".{0,64}", structured in jsonish()) {
        let _ = parse_json_answer(&text);
        let _ = parse_json_answer(&structured);
        let _ = HeaderTemplate::parse(&text);
        let _ = HeaderTemplate::parse(&structured.replace('[', "{{"));
    }

    #[test]
    fn scripts_never_panic(text in ".{0,96}") {
        let _ = Script::from_toml(&text);
        let _ = Script::from_json(&text);
    }
}
