//! The job runner of `examples/job_runner.rs` under load: 200 concurrent
//! jobs through a supervisor, a runner and a log sink subscribed at spawn,
//! with the default configuration (64 handles; spawns past the cap queue),
//! account for every byte; cancelling an owner kills its jobs and leaves
//! the others whole.

#[allow(dead_code)]
#[path = "../examples/job_runner/pieces.rs"]
mod pieces;
#[path = "support/proc.rs"]
mod support;

use std::time::{Duration, Instant};

use pieces::{JobOutcome, JobReport, JobSpec, RunnerMsg};
use procward::{RegistryConfig, Status};
use ractor::ActorRef;

/// Job `i` prints its name and `10 * i` lines of `seq` to stdout, sleeps
/// half a second (so the 200 jobs overlap far past the cap of 64), and
/// prints its end to stderr.
fn spec(i: u64, owner: &str) -> JobSpec {
    JobSpec {
        command: format!(
            "printf 'job-%d\\n' {i}; seq 1 {}; sleep 0.5; echo end-{i} >&2",
            10 * i
        ),
        owner: owner.to_owned(),
        timeout: Duration::from_secs(120),
    }
}

fn expected_stdout(i: u64) -> Vec<u8> {
    let mut out = format!("job-{i}\n").into_bytes();
    for n in 1..=10 * i {
        out.extend_from_slice(format!("{n}\n").as_bytes());
    }
    out
}

async fn submit_all(runner: &ActorRef<RunnerMsg>, specs: Vec<JobSpec>) -> Vec<u64> {
    let submits = specs.into_iter().map(|spec| {
        let runner = runner.clone();
        async move {
            ractor::call!(runner, RunnerMsg::Submit, spec)
                .expect("the runner answers")
                .expect("the job starts")
        }
    });
    futures::future::join_all(submits).await
}

async fn wait_all(runner: &ActorRef<RunnerMsg>, jobs: &[u64]) -> Vec<JobOutcome> {
    let waits = jobs.iter().map(|job| {
        let runner = runner.clone();
        let job = *job;
        async move { ractor::call!(runner, RunnerMsg::Wait, job).expect("the runner answers") }
    });
    futures::future::join_all(waits).await
}

fn check_whole(report: &JobReport, i: u64) {
    assert_eq!(report.status, Status::Exited, "job {i}: {report:?}");
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.missed, 0, "job {i}: the sink missed bytes");
    assert_eq!(report.stdout, expected_stdout(i), "job {i}: stdout");
    assert_eq!(
        report.stderr,
        format!("end-{i}\n").as_bytes(),
        "job {i}: stderr"
    );
    assert_eq!(report.stdout.len() as u64, report.total_stdout);
    assert_eq!(report.stderr.len() as u64, report.total_stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_jobs_account_for_every_byte() {
    let config = RegistryConfig::default();
    assert_eq!(config.max_handles, 64, "the test is about the default cap");
    let (supervisor, runner) = pieces::start(config).await.expect("the job system starts");

    let started = Instant::now();
    let specs = (0..200)
        .map(|i| spec(i, &format!("owner-{}", i % 7)))
        .collect();
    let jobs = submit_all(&runner, specs).await;
    let outcomes = wait_all(&runner, &jobs).await;
    let took = started.elapsed();

    let mut bytes = 0;
    let mut pids = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let report = outcome.as_ref().expect("every job ends with a report");
        check_whole(report, i as u64);
        bytes += report.stdout.len() + report.stderr.len();
        pids.push(report.pid);
    }
    // 200 jobs of 0.5 s, 64 at a time, cannot take less than four rounds.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    eprintln!("200 jobs, {bytes} bytes, all received, in {took:?}");

    supervisor.stop_and_wait(None, None).await.unwrap();
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_owner_kills_its_jobs_and_leaves_the_others_whole() {
    let (supervisor, runner) = pieces::start(RegistryConfig::default())
        .await
        .expect("the job system starts");
    let doomed = submit_all(
        &runner,
        (0..5)
            .map(|_| JobSpec {
                command: "echo started; sleep 300".to_owned(),
                owner: "cancelled".to_owned(),
                timeout: Duration::from_secs(120),
            })
            .collect(),
    )
    .await;
    let kept = submit_all(&runner, (0..20).map(|i| spec(i, "kept")).collect()).await;

    let killed = ractor::call!(runner, RunnerMsg::CancelOwner, "cancelled".to_owned())
        .unwrap()
        .unwrap();
    assert_eq!(killed, 5);
    let mut pids = Vec::new();
    for outcome in wait_all(&runner, &doomed).await {
        let report = outcome.unwrap();
        assert_eq!(report.status, Status::Killed);
        pids.push(report.pid);
    }
    for (i, outcome) in wait_all(&runner, &kept).await.into_iter().enumerate() {
        let report = outcome.unwrap();
        check_whole(&report, i as u64);
        pids.push(report.pid);
    }
    supervisor.stop_and_wait(None, None).await.unwrap();
    for pid in pids {
        support::wait_group_gone(pid).await;
    }
}
