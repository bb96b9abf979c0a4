//! `agentd-conformance`: the conformance runner binary (10-conformance.md §1).

fn main() {
    let code = agentd_conformance::cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
