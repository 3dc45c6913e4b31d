//! Thin binary: parse the arguments, run the library, print the error chain, exit with its code.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = panorama::cli::Cli::parse();
    let code = match panorama::cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            panorama::cli::print_error(&err);
            err.exit_code()
        }
    };
    std::process::exit(code as i32);
}
