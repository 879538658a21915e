//! Measures `.dockerignore` matching at scale (issue 13, finding 9): PATTERNS patterns (a third exact paths, a
//! third globs under a directory, a third `**/` names, every hundredth an `!` exception) against FILES paths
//! four levels deep, as the context walk asks. Prints the compile and match times and the matched count.
//! Run: `cargo run --release --example ignore_scale -- [PATTERNS] [FILES]` (defaults 10000 50000).

use std::time::Instant;

use octopush::builder::PatternMatcher;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().unwrap_or(0));
    let patterns = args.next().filter(|n| *n > 0).unwrap_or(10_000);
    let files = args.next().filter(|n| *n > 0).unwrap_or(50_000);
    let lines: Vec<String> = (0..patterns)
        .map(|i| {
            let p = match i % 3 {
                0 => format!("src/mod{}/file{}.rs", i % 97, i),
                1 => format!("logs/run{}/*.log", i),
                _ => format!("**/tmp-{i}"),
            };
            if i % 100 == 99 { format!("!{p}") } else { p }
        })
        .collect();
    let paths: Vec<String> = (0..files)
        .map(|i| match i % 4 {
            0 => format!("src/mod{}/sub{}/file{}.rs", i % 97, i % 13, i),
            1 => format!("logs/run{}/day{}/out.log", i % 5000, i % 7),
            2 => format!("assets/img{}/tmp-{}/x.png", i % 50, i % 20000),
            _ => format!("src/mod{}/file{}.rs", i % 97, i % 10_000),
        })
        .collect();
    let start = Instant::now();
    let m = PatternMatcher::new(&lines).expect("patterns compile");
    let compiled = start.elapsed();
    let start = Instant::now();
    let matched = paths.iter().filter(|p| m.matches(p)).count();
    let matching = start.elapsed();
    println!(
        "{patterns} patterns, {files} files: compile {:.3} s, match {:.3} s ({:.2} us/file), {matched} matched",
        compiled.as_secs_f64(),
        matching.as_secs_f64(),
        matching.as_secs_f64() * 1e6 / files as f64
    );
}
