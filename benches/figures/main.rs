//! procward's figures, each measured in the same run as its baseline (the
//! same work done with raw `tokio::process`, or the thing procward
//! replaces) and printed side by side with their ratio as a Markdown table.
//!
//! ```sh
//! cargo bench --bench figures                 # every figure (about 5 min)
//! cargo bench --bench figures -- spawn poll   # only the groups named
//! cargo bench --bench figures -- --quick      # fewer rounds
//! ```
//!
//! Groups: `spawn`, `poll`, `capture`, `kill`, `cgroup`, `memory`, `full`,
//! `serve`, `serve_client`, `scale`.
//! `--full-cap N` changes the size of the full registry (100,000).
//! `--scale-ladder 100,500` runs the scale group at those N only, and
//! `--scale-svg PATH` says where its plot goes (docs/scale.svg for the full
//! ladder, the target directory otherwise).
//! Every child the bench starts is killed and reaped before it ends; it
//! checks that none is left.

mod capture;
mod cgroup;
mod harness;
mod heap;
mod kill;
mod memory;
mod plot;
mod poll;
mod procfs;
mod raw;
mod replaced;
mod scale;
mod serve;
mod serve_client;
mod spawn;

use std::time::{Duration, Instant};

use harness::Row;

/// Counts the live heap for the memory probe (off until it starts).
#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// What the command line asked for.
#[derive(Debug)]
pub(crate) struct Opts {
    pub(crate) quick: bool,
    groups: Vec<String>,
    pub(crate) full_cap: usize,
    /// `--scale-ladder`: the N of the scale group instead of its ladder.
    pub(crate) scale_ladder: Option<Vec<usize>>,
    /// `--scale-svg`: where the scale group's plot goes.
    pub(crate) scale_svg: Option<std::path::PathBuf>,
}

impl Opts {
    fn parse() -> Opts {
        let mut opts = Opts {
            quick: false,
            groups: Vec::new(),
            full_cap: 100_000,
            scale_ladder: None,
            scale_svg: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--full-cap" => {
                    opts.full_cap = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--full-cap takes a number");
                }
                "--scale-ladder" => {
                    let ladder = args.next().and_then(|list| {
                        list.split(',')
                            .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
                            .collect::<Option<Vec<usize>>>()
                    });
                    opts.scale_ladder =
                        Some(ladder.expect("--scale-ladder takes numbers, e.g. 100,500"));
                }
                "--scale-svg" => {
                    opts.scale_svg = Some(args.next().expect("--scale-svg takes a path").into());
                }
                // cargo passes `--bench`; libtest flags mean nothing here.
                flag if flag.starts_with('-') => {}
                group => opts.groups.push(group.to_owned()),
            }
        }
        opts
    }

    /// How many rounds a figure runs: `full`, or a few with `--quick`.
    pub(crate) fn rounds(&self, full: usize) -> usize {
        if self.quick { full.min(3) } else { full }
    }

    fn wants(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g == group)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == memory::PROBE_FLAG) {
        memory::probe(args.get(at + 1).map_or("procward", String::as_str));
        return;
    }
    if let Some(at) = args.iter().position(|a| a == scale::PROBE_FLAG) {
        let side = args.get(at + 1).map_or("library", String::as_str);
        let n = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .expect("--probe-scale SIDE N");
        scale::probe(side, n);
        return;
    }
    let opts = Opts::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "procward figures: {} cores, {}; ratios are procward / baseline",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        machine()
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut run = |group: &str, figure: &dyn Fn() -> Vec<Row>| {
        if !opts.wants(group) {
            return;
        }
        eprintln!("== {group}");
        let start = Instant::now();
        for row in figure() {
            println!("{}", row.markdown());
            rows.push(row);
        }
        eprintln!("   ({:.1} s)", start.elapsed().as_secs_f64());
    };
    run("spawn", &|| {
        runtime.block_on(spawn::spawn_wait_release(&opts))
    });
    run("poll", &|| runtime.block_on(poll::poll(&opts)));
    run("capture", &|| runtime.block_on(capture::capture(&opts)));
    run("kill", &|| runtime.block_on(kill::kill(&opts)));
    run("cgroup", &|| runtime.block_on(cgroup::cgroup(&opts)));
    run("memory", &|| memory::memory(&opts));
    run("full", &|| {
        runtime.block_on(spawn::full_registry_spawn_rate(&opts))
    });
    run("serve", &|| serve::serve(&opts));
    run("serve_client", &|| serve_client::serve_client(&opts));
    run("scale", &|| scale::scale(&opts));
    drop(runtime);

    println!("\n{}", harness::table(&rows));
    check_no_children();
}

/// Fails the run if any child is left (zombies included), after giving
/// the last reapers a moment.
fn check_no_children() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = procfs::children();
        if left.is_empty() {
            println!("no child process left behind");
            return;
        }
        if Instant::now() > deadline {
            panic!("children left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The CPU model and kernel, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, Linux {}", kernel.trim())
}
