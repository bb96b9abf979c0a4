//! The `agentd` binary: flags, subcommands, rendering and exit codes; everything it runs lives
//! in the library crates.

// mimalloc: a one-shot run allocates a large spanned tree and a trace in a few milliseconds; the
// allocator's cheaper fresh-page handling is measurable on the 9,000-node benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod app;
mod flags;
mod inspect;
mod logging;
mod output;
mod rt;
mod state;
mod wiring;

fn main() {
    let code = app::main(std::env::args_os().skip(1).collect());
    output::flush();
    std::process::exit(code);
}
