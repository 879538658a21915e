//! The `octopush` binary: the action and the command line. This file is the one error boundary: whatever fails
//! below is printed once, as an `::error::` annotation under Actions or an `error:` line on a terminal, with its
//! causes, and the process exits 1. Panics get the same treatment, never a backtrace.

mod actions;
mod cli;
mod config;
mod install_cmd;
mod local_git;
mod prune_cmd;
mod run;
mod summary;

use std::process::ExitCode;

use actions::{Env, Log};

fn main() -> ExitCode {
    let env = Env::from_process();
    let in_actions = env.in_actions();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let text =
            format!("octopush hit an internal error ({msg}). This is a bug: please report it with the step's log.");
        if in_actions {
            println!("::error title=octopush internal error::{}", actions::commands::escape_data(&text));
        } else {
            eprintln!("error: {text}");
        }
        std::process::exit(1);
    }));

    let matches = match cli::command().try_get_matches_from(std::env::args_os()) {
        Ok(m) => m,
        Err(e) => {
            // --help and --version are not failures; usage errors print clap's own message (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let log = Log::new(in_actions, matches.get_flag("debug") || env.runner_debug());

    // One TLS stack for the whole binary (rustls with ring); installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            log.error("octopush failed", &format!("could not start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(&env, &matches, &log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (title, message) = describe(&err);
            match err.downcast_ref::<run::AtLine>() {
                Some(at) => log.error_at(&title, &message, &at.file, at.line),
                None => log.error(&title, &message),
            }
            ExitCode::FAILURE
        }
    }
}

/// The annotation's title and text: the top error, then its causes, each once.
fn describe(err: &anyhow::Error) -> (String, String) {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    let title = match err.downcast_ref::<config::ConfigError>() {
        Some(_) => "Invalid input",
        None => "octopush failed",
    };
    (title.to_string(), parts.join(": "))
}
