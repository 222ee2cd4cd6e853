//! The OS worker: a few threads per OS process that do procward's blocking
//! OS work. Spawner threads fork every child; one worker thread reaps
//! orphans and runs the `/proc` scans that end a handle (the group sweep
//! and the escapee hunt), in batches.
//!
//! Why a fixed set of threads, owned by nobody but themselves:
//! - Forking blocks until the program is executed. On tokio's blocking
//!   pool a burst of spawns grows up to 512 threads; here it queues for
//!   [`spawner_threads`] spawners (one per core, 2 to 4), with at most
//!   [`SPAWN_QUEUE`] spawns waiting and the rest of the callers waiting for
//!   a place (back-pressure, not threads).
//! - The orphan reaper never reaps a spawned child behind its process
//!   actor's back, however fast that child exits: a spawner counts a fork
//!   as started before it forks, sends the new leader's pid to the worker,
//!   and only then counts it as finished. The reaper reads both counts,
//!   takes every pid sent so far, lists our children, and reads the count
//!   of forks started again: only if no fork was under way from the first
//!   read to the last does it reap a child it does not know as a leader.
//! - Ending N handles at once costs one pass over `/proc`, not N: every
//!   cleanup queued when a pass starts is served by it. None of it runs on
//!   an async runtime's workers. A tree with a cgroup needs no escapee
//!   hunt: its cleanup waits for the cgroup's `cgroup.events` to say
//!   `populated 0`, reads its usage and removes it (and, in orphan-reaping
//!   mode, still sweeps the group for orphans handed to us).
//!
//! The worker's state (the leaders forked and not yet reaped, the cleanups
//! waiting) is plain data owned by its thread; requests reach it through a
//! channel and answers go back through oneshot channels.
//!
//! # Caveats
//!
//! In orphan-reaping mode (this OS process is a child subreaper) the worker
//! reaps every zombie child of this process that it did not fork as a
//! handle's leader and that is not in this process's own process group.
//! A program that enables orphan reaping and also starts children of its
//! own in other process groups, outside procward, must not rely on
//! waiting for them by pid.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{
    Pid, WaitId, WaitIdOptions, WaitOptions, getpgrp, getpid, set_child_subreaper, waitid, waitpid,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

use super::cgroup::{self, CgroupWrite, Placement, TreeUsage};
use super::child::{self, ChildNotice, DroppedChild, RawSpawned};
use super::escapees::{self, TOKEN_VAR};
use super::procfs::{self, ProcStat};
use crate::error::Error;
use crate::messages::SpawnRequest;

/// Spawns queued for the worker at once; further spawns wait for a place.
pub(crate) const SPAWN_QUEUE: usize = 256;
/// How long a cleanup waits for its group's members and the escapees it
/// killed to die before it gives up (and says so in the log).
const CLEANUP_DEADLINE: Duration = Duration::from_secs(5);
/// The first pause between two passes while cleanups wait; it doubles up
/// to [`MAX_PAUSE`], as no event announces a re-parented orphan's end.
const MIN_PAUSE: Duration = Duration::from_micros(500);
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause while only cgroups are awaited: a look at a cgroup is
/// one small read, not a pass over `/proc`, and a killed tree empties
/// within milliseconds, so a long pause would only add to the kill's time.
const MAX_CGROUP_PAUSE: Duration = Duration::from_millis(1);
/// How soon an orphan reap put off while forks were under way is tried
/// again.
const RETRY_REAP: Duration = Duration::from_millis(1);
/// How long an orphan reap waits when the only zombie child it can see is
/// a leader (whose process actor reaps it in a moment): a SIGCHLD is
/// usually a leader's, and looking again after its reap finds no zombie at
/// all, without listing our children. At most this long do orphans stay
/// zombies, and at most once per this long does a SIGCHLD list them.
const LEADER_REAP_WAIT: Duration = Duration::from_millis(5);
/// How long [`Worker::reap_orphans_now`] keeps looking while a child of
/// ours that is no leader is still alive: a dying orphan may yet hand us
/// zombies of its own.
const REAP_NOW_WAIT: Duration = Duration::from_millis(200);

/// What a handle's end asks of the worker.
#[derive(Debug, Clone)]
pub(crate) struct Cleanup {
    /// The handle's child: exited, unreaped, and leader of its group, which
    /// was sent SIGKILL.
    pub(crate) leader: u32,
    /// Wait until no other member of the leader's group is left, reaping
    /// those that are our zombie children (orphan-reaping mode).
    pub(crate) sweep_group: bool,
    /// Kill every process whose environment carries this token, until a
    /// pass finds none alive (escapee-hunting mode).
    pub(crate) token: Option<String>,
    /// The tree's cgroup (cgroup containment), killed already (the
    /// process actor SIGKILLs the tree before it asks for the cleanup):
    /// wait until it is empty, read its usage and remove it.
    pub(crate) cgroup: Option<PathBuf>,
}

/// What a spawn ends with: the request back and the forked child, or why
/// not.
pub(crate) type Forked = Result<(Box<SpawnRequest>, RawSpawned), Error>;

/// Where a spawn's outcome goes, called on the spawner thread that forked
/// it (no task hop in between). Called exactly once: a job dropped unrun
/// (its spawner gone) reports that the worker is gone.
struct OnForked(Option<Box<dyn FnOnce(Forked) + Send>>);

impl OnForked {
    fn call(mut self, forked: Forked) {
        if let Some(done) = self.0.take() {
            done(forked);
        }
    }
}

impl Drop for OnForked {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Err(gone()));
        }
    }
}

/// A spawn for a spawner thread.
struct SpawnJob {
    request: Box<SpawnRequest>,
    placement: Option<Placement>,
    _permit: OwnedSemaphorePermit,
    done: OnForked,
}

/// Forks begun and forks whose leader's pid was sent to the worker (or
/// that failed): equal when no fork is under way.
static FORKS_STARTED: AtomicU64 = AtomicU64::new(0);
static FORKS_FINISHED: AtomicU64 = AtomicU64::new(0);

/// How many spawner threads fork at once: one per core, 2 to 4.
pub(crate) fn spawner_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// What the worker learns of leaders. These come on a channel of their
/// own that the worker reads before it looks at its children, and never
/// wake it: a spawn and a reap cost the worker's thread nothing.
enum LeaderNote {
    /// A spawner forked this leader.
    Forked(i32),
    /// A leader was reaped by its owner: its pid is no longer ours.
    Reaped(i32),
}

enum Job {
    Cleanup {
        cleanup: Cleanup,
        reply: oneshot::Sender<Option<TreeUsage>>,
    },
    /// Kill or freeze a tree's cgroup.
    Cgroup(PathBuf, CgroupWrite),
    /// Kill a cgroup and remove it once empty.
    DropCgroup(PathBuf),
    /// Blocking work of another module (a registry's cgroup), run in turn.
    Run(Box<dyn FnOnce() + Send>),
    /// A leader dropped unreaped, its group (and cgroup) killed: reap it
    /// when it died, and remove its cgroup once empty.
    ReapDropped(i32, DroppedChild, Option<PathBuf>),
    /// A child that is not a leader: never reap it (the registry's guard).
    Keep(i32),
    /// This process became a child subreaper.
    ReapOrphans,
    /// A SIGCHLD arrived.
    ChildSignal,
    /// Reap every orphan that is a zombie now, and answer once done.
    ReapNow(oneshot::Sender<()>),
}

/// The way to the worker thread. Cheap to share: every registry of this OS
/// process uses the same one.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    spawners: Vec<mpsc::Sender<SpawnJob>>,
    next_spawner: AtomicUsize,
    spawn_places: Arc<Semaphore>,
}

static WORKER: OnceLock<Option<Worker>> = OnceLock::new();

/// The worker, started on first use. `Err` if its thread could not be
/// started (then no spawn can run in this process).
pub(crate) fn worker() -> Result<&'static Worker, Error> {
    WORKER
        .get_or_init(|| match start() {
            Ok(worker) => Some(worker),
            Err(err) => {
                tracing::error!(%err, "could not start procward's OS threads");
                None
            }
        })
        .as_ref()
        .ok_or_else(|| Error::Os {
            operation: "starting procward's OS threads".into(),
            source: io::Error::other("a thread could not be started").into(),
        })
}

fn start() -> io::Result<Worker> {
    let (jobs, rx) = mpsc::channel();
    let (notes, notes_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("procward-os".into())
        .spawn(move || WorkerState::new(notes_rx).run(rx))?;
    let mut spawners = Vec::new();
    for n in 0..spawner_threads() {
        let (tx, queue) = mpsc::channel();
        let leaders = notes.clone();
        std::thread::Builder::new()
            .name(format!("procward-spawn-{n}"))
            .spawn(move || fork_all(queue, leaders))?;
        spawners.push(tx);
    }
    let notices = jobs.clone();
    child::send_notices_to(move |notice| {
        let job = match notice {
            ChildNotice::Reaped(pid) => {
                let _ = notes.send(LeaderNote::Reaped(pid));
                return;
            }
            ChildNotice::Dropped(pid, child, cgroup) => Job::ReapDropped(pid, child, cgroup),
            ChildNotice::Cgroup(path, write) => Job::Cgroup(path, write),
        };
        let _ = notices.send(job);
    });
    let dropped = jobs.clone();
    cgroup::send_dropped_to(move |path| {
        let _ = dropped.send(Job::DropCgroup(path));
    });
    Ok(Worker {
        jobs,
        spawners,
        next_spawner: AtomicUsize::new(0),
        spawn_places: Arc::new(Semaphore::new(SPAWN_QUEUE)),
    })
}

/// A spawner thread: forks each spawn it is given and tells the worker of
/// the new leader before it counts the fork as finished (see the module
/// docs for why that order).
fn fork_all(queue: mpsc::Receiver<SpawnJob>, leaders: mpsc::Sender<LeaderNote>) {
    for job in queue {
        FORKS_STARTED.fetch_add(1, Ordering::SeqCst);
        let result = child::spawn(&job.request, job.placement.as_ref());
        if let Ok(spawned) = &result {
            let _ = leaders.send(LeaderNote::Forked(spawned.child.pid() as i32));
        }
        FORKS_FINISHED.fetch_add(1, Ordering::SeqCst);
        let SpawnJob { request, done, .. } = job;
        done.call(result.map(|spawned| (request, spawned)));
    }
}

fn gone() -> Error {
    Error::Os {
        operation: "reaching procward's OS worker thread".into(),
        source: io::Error::other("the worker thread has stopped").into(),
    }
}

impl Worker {
    /// Forks `request` on a spawner thread, into a cgroup made from
    /// `placement` if given, and calls `done` with the outcome on that
    /// thread. Takes a place in the queue at once when one
    /// is free; otherwise a task of the current runtime waits for one (so
    /// this must run inside a runtime). If `done` drops the child it is
    /// killed and reaped.
    pub(crate) fn spawn_then(
        &'static self,
        request: SpawnRequest,
        placement: Option<Placement>,
        done: impl FnOnce(Forked) + Send + 'static,
    ) {
        let done = OnForked(Some(Box::new(done)));
        match self.spawn_places.clone().try_acquire_owned() {
            Ok(permit) => self.queue(request, placement, permit, done),
            Err(TryAcquireError::Closed) => done.call(Err(gone())),
            Err(TryAcquireError::NoPermits) => {
                let places = self.spawn_places.clone();
                tokio::spawn(async move {
                    match places.acquire_owned().await {
                        Ok(permit) => self.queue(request, placement, permit, done),
                        Err(_) => done.call(Err(gone())),
                    }
                });
            }
        }
    }

    fn queue(
        &self,
        request: SpawnRequest,
        placement: Option<Placement>,
        permit: OwnedSemaphorePermit,
        done: OnForked,
    ) {
        let n = self.next_spawner.fetch_add(1, Ordering::Relaxed) % self.spawners.len().max(1);
        let job = SpawnJob {
            request: Box::new(request),
            placement,
            _permit: permit,
            done,
        };
        // A job that cannot be sent is dropped, and its `OnForked` reports
        // the worker gone.
        if let Some(spawner) = self.spawners.get(n) {
            let _ = spawner.send(job);
        }
    }

    /// Runs `cleanup` in the worker's next pass, and resolves when it is
    /// done (or gave up at its deadline), with the tree's usage as its
    /// cgroup counted it, if it has one.
    pub(crate) async fn cleanup(&self, cleanup: Cleanup) -> Option<TreeUsage> {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::Cleanup { cleanup, reply }).is_ok() {
            return done.await.ok().flatten();
        }
        None
    }

    /// Runs the blocking `work` on the worker's thread, between its other
    /// jobs, and returns its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (reply, done) = oneshot::channel();
        self.jobs
            .send(Job::Run(Box::new(move || {
                let _ = reply.send(work());
            })))
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())
    }

    /// Makes this OS process a child subreaper and has the worker reap
    /// every orphan it adopts (see the module's caveats).
    pub(crate) fn reap_orphans(&self) -> io::Result<()> {
        set_child_subreaper(Some(getpid())).map_err(io::Error::from)?;
        self.jobs
            .send(Job::ReapOrphans)
            .map_err(|_| io::Error::other("the OS worker thread has stopped"))
    }

    /// A SIGCHLD arrived: reap the orphans that are zombies now (within
    /// [`LEADER_REAP_WAIT`] when a leader's zombie hides them).
    pub(crate) fn child_signal(&self) {
        let _ = self.jobs.send(Job::ChildSignal);
    }

    /// Reaps every orphan that is a zombie now, and resolves once done (at
    /// a registry's stop, so that no zombie outlives it). Does nothing
    /// unless this process reaps orphans.
    pub(crate) async fn reap_orphans_now(&self) {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::ReapNow(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// `pid` is a child of ours that is not a leader and not an orphan (the
    /// registry's guard): never reap it.
    pub(crate) fn keep(&self, pid: u32) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = self.jobs.send(Job::Keep(pid));
        }
    }
}

/// A cleanup waiting for its group to empty or its escapees to die.
struct Pending {
    leader: i32,
    sweep_group: bool,
    token: Option<String>,
    /// The leader's start time, read once: no escapee started before it.
    leader_start: Option<u64>,
    /// Escapees killed and not yet seen dead.
    killed: Vec<OwnedFd>,
    /// A pass found no bearer of the token but met a process whose
    /// environment read empty (one in the middle of an exec has none for
    /// a moment), and one more pass was asked for.
    rechecked: bool,
    /// The tree's cgroup, until it is empty and removed.
    cgroup: Option<PathBuf>,
    /// What the cgroup counted, read when it emptied.
    usage: Option<TreeUsage>,
    give_up: Instant,
    reply: oneshot::Sender<Option<TreeUsage>>,
}

struct WorkerState {
    /// Leaders forked and not yet reaped, with how many times each pid is
    /// registered (a reused pid may be forked again before the first
    /// owner's `ForgetLeader` arrives).
    leaders: HashMap<i32, u32>,
    /// Children that are neither leaders nor orphans (guards).
    kept: Vec<i32>,
    reaping_orphans: bool,
    /// A SIGCHLD (or the start of orphan reaping) asked for a reap that has
    /// not run yet.
    reap_wanted: bool,
    /// The only zombie child seen was a leader: look again at this time.
    reap_after_leader: Option<Instant>,
    /// Callers of [`Worker::reap_orphans_now`] waiting for the next reap,
    /// and until when they wait at most.
    reap_callers: Vec<oneshot::Sender<()>>,
    reap_callers_until: Option<Instant>,
    /// Leaders forked and reaped, not yet counted in `leaders`.
    notes: mpsc::Receiver<LeaderNote>,
    /// A cleanup or a dropped child arrived since the last look.
    new_cleanup: bool,
    pending: Vec<Pending>,
    /// Leaders dropped unreaped, waiting to die, with their cgroups.
    dropped: Vec<(i32, DroppedChild, Option<PathBuf>)>,
    /// Cgroups of dropped leaders, to remove once empty (or given up on).
    dropped_cgroups: Vec<(PathBuf, Instant)>,
    me: i32,
    my_group: i32,
    stat_buf: String,
    env_buf: Vec<u8>,
}

impl WorkerState {
    fn new(notes: mpsc::Receiver<LeaderNote>) -> Self {
        WorkerState {
            leaders: HashMap::new(),
            kept: Vec::new(),
            reaping_orphans: false,
            reap_wanted: false,
            reap_after_leader: None,
            reap_callers: Vec::new(),
            reap_callers_until: None,
            notes,
            new_cleanup: false,
            pending: Vec::new(),
            dropped: Vec::new(),
            dropped_cgroups: Vec::new(),
            me: getpid().as_raw_nonzero().get(),
            my_group: getpgrp().as_raw_nonzero().get(),
            stat_buf: String::new(),
            env_buf: Vec::new(),
        }
    }

    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        let mut pause = MIN_PAUSE;
        let mut next_pass: Option<Instant> = None;
        loop {
            // An orphan reap put off while forks were under way is tried
            // again soon (or once a leader's zombie had time to be reaped),
            // as is the next pass of waiting cleanups. A reap takes every
            // job queued, cleanups included: those are served now, not
            // when the next job happens to come.
            let now = Instant::now();
            let reap_in = (self.reap_wanted && self.reaping_orphans).then(|| {
                self.reap_after_leader
                    .map_or(RETRY_REAP, |at| at.saturating_duration_since(now))
            });
            let pass_in = next_pass.map(|at| at.saturating_duration_since(now));
            let wake = match (pass_in, reap_in) {
                _ if self.new_cleanup => Some(Duration::ZERO),
                (Some(pass), Some(reap)) => Some(pass.min(reap)),
                (pass, reap) => pass.or(reap),
            };
            let first = match wake {
                None => match jobs.recv() {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvError) => return,
                },
                Some(after) => match jobs.recv_timeout(after) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            if let Some(job) = first {
                self.absorb(job);
            }
            self.drain(&jobs);
            if std::mem::take(&mut self.new_cleanup) {
                pause = MIN_PAUSE;
                next_pass = Some(Instant::now());
            }
            if next_pass.is_some_and(|at| Instant::now() >= at) {
                self.pass(&jobs);
                next_pass = if self.pending.is_empty()
                    && self.dropped.is_empty()
                    && self.dropped_cgroups.is_empty()
                {
                    None
                } else {
                    let at = Instant::now() + pause;
                    let longest = if self.cgroups_only() {
                        MAX_CGROUP_PAUSE
                    } else {
                        MAX_PAUSE
                    };
                    pause = (pause * 2).min(longest);
                    Some(at)
                };
            }
            // A caller of `reap_orphans_now` waits for a reap of its own,
            // however many reaps a pass made since it asked.
            if !self.reap_callers.is_empty() {
                self.reap_wanted = true;
            }
            if self.reap_wanted
                && self.reaping_orphans
                && self.reap_after_leader.is_none_or(|at| Instant::now() >= at)
            {
                self.reap_if_orphans(&jobs);
            }
            if !self.reaping_orphans {
                self.answer_reap_callers();
            }
        }
    }

    /// A reap for [`Worker::reap_orphans_now`]: lists our children (no
    /// look first), and again after [`RETRY_REAP`] while one that is no
    /// leader is alive outside our group (it may be dying and about to
    /// hand us zombies), for [`REAP_NOW_WAIT`] at most.
    fn reap_for_callers(&mut self, jobs: &mpsc::Receiver<Job>) {
        let settled = self
            .reap_orphans(jobs)
            .is_some_and(|alive| alive.iter().all(|stat| stat.pgrp == self.my_group));
        let late = self
            .reap_callers_until
            .is_none_or(|until| Instant::now() >= until);
        if settled || late {
            self.reap_wanted = false;
            self.answer_reap_callers();
        } else {
            self.reap_wanted = true;
        }
    }

    fn answer_reap_callers(&mut self) {
        self.reap_callers_until = None;
        for caller in self.reap_callers.drain(..) {
            let _ = caller.send(());
        }
    }

    /// Takes every job queued now, then every note of leaders.
    ///
    /// Jobs first: a job about a leader (its cleanup) is sent after the
    /// note of its fork, so the notes read after the jobs include the
    /// forks of every leader a job taken here names. The other order let a
    /// cleanup sent between the two reads name a leader not yet known as
    /// one, and the group sweep reaped that leader behind its process
    /// actor's back (its exit status lost).
    fn drain(&mut self, jobs: &mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.try_recv() {
            self.absorb(job);
        }
        while let Ok(note) = self.notes.try_recv() {
            match note {
                LeaderNote::Forked(pid) => *self.leaders.entry(pid).or_default() += 1,
                LeaderNote::Reaped(pid) => self.forget(pid),
            }
        }
    }

    /// Reaps our zombie orphans, after a look that finds most often that
    /// there is none: a SIGCHLD is usually a leader's, whose zombie its
    /// process actor reaps. If the only zombie child seen is a leader, the
    /// look is repeated once after [`LEADER_REAP_WAIT`]; any other zombie
    /// (or a second look that still sees one) lists our children.
    fn reap_if_orphans(&mut self, jobs: &mpsc::Receiver<Job>) {
        if !self.reap_callers.is_empty() {
            self.reap_for_callers(jobs);
            return;
        }
        let looked_before = self.reap_after_leader.take().is_some();
        let zombie = zombie_child();
        if let ZombieChild::Pid(_) = zombie {
            // Every leader forked before the zombie was seen is known now.
            self.drain(jobs);
        }
        match zombie {
            ZombieChild::None => self.reap_wanted = false,
            ZombieChild::Pid(pid) if !looked_before && self.is_leader(pid) => {
                self.reap_after_leader = Some(Instant::now() + LEADER_REAP_WAIT);
            }
            ZombieChild::Pid(_) | ZombieChild::Unknown => {
                self.reap_orphans(jobs);
            }
        }
    }

    fn absorb(&mut self, job: Job) {
        match job {
            Job::Cleanup { cleanup, reply } => {
                self.add_cleanup(cleanup, reply);
                self.new_cleanup = true;
            }
            Job::ReapDropped(pid, child, cgroup) => {
                if let Some(path) = &cgroup {
                    write_cgroup(path, CgroupWrite::Kill);
                }
                self.dropped.push((pid, child, cgroup));
                self.new_cleanup = true;
            }
            Job::Cgroup(path, write) => write_cgroup(&path, write),
            Job::DropCgroup(path) => {
                write_cgroup(&path, CgroupWrite::Kill);
                self.dropped_cgroups
                    .push((path, Instant::now() + CLEANUP_DEADLINE));
                self.new_cleanup = true;
            }
            Job::Run(work) => work(),
            Job::Keep(pid) => self.kept.push(pid),
            Job::ReapOrphans => {
                self.reaping_orphans = true;
                self.reap_wanted = true;
            }
            Job::ChildSignal => self.reap_wanted = true,
            Job::ReapNow(reply) => {
                self.reap_callers.push(reply);
                self.reap_callers_until = Some(Instant::now() + REAP_NOW_WAIT);
                self.reap_wanted = true;
                self.reap_after_leader = None;
            }
        }
    }

    fn forget(&mut self, pid: i32) {
        if let Some(count) = self.leaders.get_mut(&pid) {
            *count -= 1;
            if *count == 0 {
                self.leaders.remove(&pid);
            }
        }
    }

    fn add_cleanup(&mut self, cleanup: Cleanup, reply: oneshot::Sender<Option<TreeUsage>>) {
        let Ok(leader) = i32::try_from(cleanup.leader) else {
            let _ = reply.send(None);
            return;
        };
        self.pending.push(Pending {
            leader,
            sweep_group: cleanup.sweep_group,
            token: cleanup.token,
            leader_start: None,
            killed: Vec::new(),
            rechecked: false,
            cgroup: cleanup.cgroup,
            usage: None,
            give_up: Instant::now() + CLEANUP_DEADLINE,
            reply,
        });
    }

    fn is_leader(&self, pid: i32) -> bool {
        self.leaders.contains_key(&pid)
    }

    /// Reaps our zombie children that are neither leaders nor kept nor in
    /// our own group; returns the living (or unreapable) ones. `None` when
    /// it cannot tell: the children cannot be listed, or a fork was under
    /// way (its child could be listed before its pid reached us), in which
    /// case the reap is tried again soon.
    fn reap_orphans(&mut self, jobs: &mpsc::Receiver<Job>) -> Option<Vec<ProcStat>> {
        let started = FORKS_STARTED.load(Ordering::SeqCst);
        if FORKS_FINISHED.load(Ordering::SeqCst) != started {
            self.reap_wanted = true;
            return None;
        }
        // Every fork counted so far sent its leader before it was counted:
        // take them all before listing.
        self.drain(jobs);
        let children = match procfs::own_children() {
            Ok(children) => children,
            Err(err) => {
                tracing::warn!(%err, "cannot list this process's children; orphans are not reaped now");
                return None;
            }
        };
        if FORKS_STARTED.load(Ordering::SeqCst) != started {
            self.reap_wanted = true;
            return None;
        }
        self.reap_wanted = false;
        self.reap_after_leader = None;
        let mut alive = Vec::new();
        for pid in children {
            if self.is_leader(pid) || self.kept.contains(&pid) {
                continue;
            }
            let Some(stat) = procfs::read_stat(pid, &mut self.stat_buf) else {
                continue;
            };
            if stat.is_zombie()
                && stat.pgrp != self.my_group
                && let Some(pid) = Pid::from_raw(pid)
                && matches!(waitpid(Some(pid), WaitOptions::NOHANG), Ok(Some(_)))
            {
                continue;
            }
            alive.push(stat);
        }
        Some(alive)
    }

    /// One pass for every pending cleanup; answers those that are done.
    fn pass(&mut self, jobs: &mpsc::Receiver<Job>) {
        self.reap_dropped();
        self.reap_killed();
        self.empty_cgroups();
        let needs_scan = self
            .pending
            .iter()
            .any(|p| p.sweep_group || p.token.is_some());
        let (members, unsure) = if !needs_scan {
            (vec![0; self.pending.len()], false)
        } else if self.reaping_orphans
            && let Some(alive) = self.reap_orphans(jobs)
            && alive.iter().all(|stat| stat.pgrp == self.my_group)
            && self.pending.iter().all(|p| p.killed.is_empty())
        {
            // This process is a subreaper: every living descendant of an
            // exited leader has an ancestor among our children that is not
            // a leader, and there is none (our own group's children are
            // the host's, not a tree's). Every sweep and hunt is done,
            // without reading the rest of `/proc`.
            (vec![0; self.pending.len()], false)
        } else {
            self.scan()
        };
        let now = Instant::now();
        let mut waiting = Vec::with_capacity(self.pending.len());
        for (mut pending, members) in self.pending.drain(..).zip(members) {
            // A process caught mid-exec shows an empty environment: it may
            // be an escapee that carries the token a moment later. A hunt
            // that met one passes once more before it calls the tree done.
            let recheck = unsure && pending.token.is_some() && !pending.rechecked;
            if recheck {
                pending.rechecked = true;
            }
            let done =
                members == 0 && pending.killed.is_empty() && pending.cgroup.is_none() && !recheck;
            if !done && now < pending.give_up {
                waiting.push(pending);
                continue;
            }
            if !done {
                tracing::warn!(
                    leader = pending.leader,
                    members,
                    escapees = pending.killed.len(),
                    cgroup = ?pending.cgroup,
                    "process tree still has members after the cleanup deadline"
                );
                if let Some(path) = pending.cgroup {
                    // Removed once empty, or with the registry's cgroup.
                    self.dropped_cgroups.push((path, now + CLEANUP_DEADLINE));
                }
            }
            let _ = pending.reply.send(pending.usage);
        }
        self.pending = waiting;
    }

    /// Whether every waiting cleanup waits only for cgroups to empty (no
    /// `/proc` pass, no dropped leader).
    fn cgroups_only(&self) -> bool {
        self.dropped.is_empty()
            && self
                .pending
                .iter()
                .all(|p| !p.sweep_group && p.token.is_none() && p.killed.is_empty())
    }

    /// Reads the usage of every pending cgroup that has emptied and removes
    /// it; removes the emptied cgroups of dropped leaders.
    fn empty_cgroups(&mut self) {
        for pending in &mut self.pending {
            let Some(path) = &pending.cgroup else {
                continue;
            };
            match cgroup::populated(path) {
                Ok(true) => continue,
                Ok(false) => {
                    pending.usage = cgroup::usage(path).ok();
                    remove_cgroup(path);
                }
                Err(err) => {
                    tracing::warn!(cgroup = %path.display(), %err, "cannot read the cgroup's events; leaving it");
                }
            }
            pending.cgroup = None;
        }
        let now = Instant::now();
        self.dropped_cgroups
            .retain(|(path, give_up)| match cgroup::populated(path) {
                Ok(false) => {
                    remove_cgroup(path);
                    false
                }
                Ok(true) if now < *give_up => true,
                Ok(true) | Err(_) => {
                    tracing::warn!(cgroup = %path.display(), "a dropped tree's cgroup did not empty; left to the registry's stop");
                    false
                }
            });
    }

    /// Reaps the dropped leaders that have died.
    fn reap_dropped(&mut self) {
        let mut dead = Vec::new();
        let mut cgroups = Vec::new();
        self.dropped.retain_mut(|(pid, child, cgroup)| {
            let reaped = matches!(
                waitid(
                    WaitId::PidFd(child.as_fd()),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                ),
                Ok(Some(_)) | Err(_)
            );
            if reaped {
                dead.push(*pid);
                cgroups.extend(cgroup.take());
            }
            !reaped
        });
        for pid in dead {
            self.forget(pid);
        }
        let give_up = Instant::now() + CLEANUP_DEADLINE;
        self.dropped_cgroups
            .extend(cgroups.into_iter().map(|path| (path, give_up)));
    }

    /// Drops the killed escapees that have exited, reaping those that are
    /// our children.
    fn reap_killed(&mut self) {
        for pending in &mut self.pending {
            pending.killed.retain(|pidfd| {
                let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
                let now = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // A pidfd turns readable when its process exits.
                let exited = matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0);
                if exited {
                    // Not our child (ECHILD) is fine: its parent reaps it.
                    let _ = waitid(
                        WaitId::PidFd(pidfd.as_fd()),
                        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                    );
                }
                !exited
            });
        }
    }

    /// Reads `/proc` once for every pending cleanup: returns the members
    /// left in each one's group (reaping our zombie children among them),
    /// and whether a process that may yet carry a token was met (its
    /// environment read empty); kills the processes that carry a pending
    /// token.
    fn scan(&mut self) -> (Vec<usize>, bool) {
        let mut members = vec![0; self.pending.len()];
        let mut unsure = false;
        let mut groups: HashMap<i32, usize> = HashMap::new();
        let mut tokens: HashMap<String, usize> = HashMap::new();
        let mut min_start = u64::MAX;
        for (i, pending) in self.pending.iter_mut().enumerate() {
            if pending.sweep_group {
                groups.insert(pending.leader, i);
            }
            if let Some(token) = &pending.token {
                tokens.insert(token.clone(), i);
                if pending.leader_start.is_none() {
                    pending.leader_start = procfs::read_stat(pending.leader, &mut self.stat_buf)
                        .map(|stat| stat.start_time);
                }
                min_start = min_start.min(pending.leader_start.unwrap_or(0));
            }
        }
        let pids = match procfs::pids() {
            Ok(pids) => pids,
            Err(err) => {
                // Nothing can be found (out of descriptors, say): say so,
                // and keep every cleanup waiting until its deadline.
                tracing::warn!(%err, "cannot read /proc; process trees cannot be swept now");
                return (vec![1; self.pending.len()], false);
            }
        };
        for pid in pids {
            if pid == self.me || self.is_leader(pid) {
                continue;
            }
            let Some(stat) = procfs::read_stat(pid, &mut self.stat_buf) else {
                continue;
            };
            if let Some(&i) = groups.get(&stat.pgrp) {
                if stat.is_zombie()
                    && stat.ppid == self.me
                    && let Some(pid) = Pid::from_raw(pid)
                    && matches!(waitpid(Some(pid), WaitOptions::NOHANG), Ok(Some(_)))
                {
                    continue;
                }
                // Alive (it was sent SIGKILL with its group), or a zombie
                // whose dying parent will leave it to us.
                members[i] += 1;
                continue;
            }
            if tokens.is_empty() || stat.is_zombie() || stat.start_time < min_start {
                // No escapee of a pending tree started before its leader.
                continue;
            }
            let Some(token) = procfs::env_var(pid, TOKEN_VAR, &mut self.env_buf) else {
                // Kernel threads (children of kthreadd, pid 2) have none.
                if self.env_buf.is_empty() && !matches!(stat.ppid, 0 | 2) {
                    unsure = true;
                }
                continue;
            };
            if let Some(&i) = tokens.get(&token)
                && let Some(pidfd) = escapees::kill_pinned(pid, &token, &mut self.env_buf)
            {
                self.pending[i].killed.push(pidfd);
            }
        }
        (members, unsure)
    }
}

/// What a look at our children for a zombie found.
enum ZombieChild {
    /// No child of ours is a zombie (or we have no child).
    None,
    /// This child is a zombie (there may be more).
    Pid(i32),
    /// The look failed.
    Unknown,
}

/// Looks for a zombie child without reaping it (`waitid` with `WNOWAIT`):
/// one system call, where listing our children takes several per thread.
fn zombie_child() -> ZombieChild {
    // SAFETY: `siginfo_t` is plain data, valid zeroed; `waitid` only
    // writes into it, and with `WNOWAIT` it leaves the child unreaped.
    #[allow(unsafe_code)]
    let (ret, pid) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let ret = libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        (ret, if ret == 0 { info.si_pid() } else { 0 })
    };
    match ret {
        0 if pid == 0 => ZombieChild::None,
        0 => ZombieChild::Pid(pid),
        _ if io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) => ZombieChild::None,
        _ => ZombieChild::Unknown,
    }
}

fn remove_cgroup(path: &std::path::Path) {
    if let Err(err) = cgroup::remove_tree(path) {
        tracing::warn!(cgroup = %path.display(), %err, "cannot remove an emptied cgroup");
    }
}

fn write_cgroup(path: &std::path::Path, write: CgroupWrite) {
    let done = match write {
        CgroupWrite::Kill => cgroup::kill_path(path),
        CgroupWrite::Freeze(on) => cgroup::freeze_path(path, on),
    };
    if let Err(err) = done {
        tracing::warn!(cgroup = %path.display(), ?write, %err, "writing to the tree's cgroup failed");
    }
}
