//! Thin binary: parse the arguments, run the library, print the error chain, exit with its code.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks for transparent huge pages on its regions; each first touch of one then
/// zeroes 2 MB, and with allocations freed and re-made that zeroing was 40% of a 1M-row
/// scoring pass (21 s, 12 s without). Off for this process; `PANORAMA_THP=1` keeps it.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("PANORAMA_THP").is_none_or(|v| v != "1") {
        // SAFETY: prctl with constant arguments only changes this process's memory policy.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// Set when printing failed because stdout's reader closed the pipe.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A panic (a bug, here or in a library) is reported in one line, with a backtrace only when
/// `RUST_BACKTRACE` asks for one; a job's panic fails that job (the scheduler catches it),
/// any other ends the command with exit code 5.
fn report_panics_briefly() {
    std::panic::set_hook(Box::new(|info| {
        // A library's panic on bad input, caught and reported as an input error.
        if panorama::error::panic_is_caught() {
            return;
        }
        // `println!` panics when the reader of stdout went away (`| head -1`): the reader has
        // what it wanted, so the command ends quietly (main exits 0).
        let text = info.to_string();
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        let trace = std::backtrace::Backtrace::capture();
        eprintln!(
            "error: internal error (a bug in panorama, not a problem with your input): {info}"
        );
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{trace}");
        }
    }));
}

fn main() {
    disable_transparent_huge_pages();
    report_panics_briefly();
    let cli = panorama::cli::Cli::parse();
    let code = match std::panic::catch_unwind(|| panorama::cli::dispatch(cli)) {
        Ok(Ok(code)) => code,
        // A closed stdout is not a failure: whoever read it stopped on purpose.
        Ok(Err(err)) if err.is_broken_pipe() => panorama::error::ExitCode::Ok,
        Ok(Err(err)) => {
            panorama::cli::print_error(&err);
            err.exit_code()
        }
        Err(_) if STDOUT_CLOSED.load(std::sync::atomic::Ordering::SeqCst) => {
            panorama::error::ExitCode::Ok
        }
        Err(_) => panorama::error::ExitCode::Internal,
    };
    std::process::exit(code as i32);
}
