//! One process's lifecycle as an explicit state machine, with no OS in it.
//!
//! [`Lifecycle`] holds the [`Phase`] and the count of open output pipes.
//! Each input (a kill, the timeout, the child's exit, a pipe closing, a
//! timer, the end of the sweep) is a plain method that moves the phase on
//! and returns the [`Effect`]s the process actor must carry out: signals to
//! the group, timers to arm, the pipes to flush, the sweep, the reap. The
//! actor owns the OS side; the unit tests below drive every transition
//! without a process.
//!
//! ```text
//!   Running ──kill / timeout / evict──▶ Ending ─┐
//!      │                                        │ child exits
//!      └──────────── child exits ───────────────┴──▶ Draining
//!                                                        │ pipes closed, or the drain
//!                                                        │ grace / kill grace passed
//!                                                        │ (group SIGKILLed, pipes flushed)
//!                                                        ▼
//!                                      Sweeping ──sweep done──▶ (reap) ──▶ Terminal
//!                   (only with orphan reaping or escapee hunting; else straight to the reap)
//! ```

use std::time::Duration;

use rustix::process::Signal as RawSignal;

use crate::messages::{Signal, Snapshot, Status};

/// How the terminal status was settled, and what that needs at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The terminal status to be: the first of a kill, the timeout or the
    /// exit wins, and nothing overwrites it.
    pub(crate) status: Status,
    /// A signal the child can catch was sent (a kill with `SIGTERM`, ...):
    /// an exit code then does not mean the child exited before the kill.
    pub(crate) sent_catchable: bool,
}

impl Settled {
    fn new(status: Status) -> Self {
        Settled {
            status,
            sent_catchable: false,
        }
    }
}

/// Where one process is in its life. Each variant carries what that phase
/// needs; nothing else can be true at the same time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    /// The child runs and nothing has decided how it ends.
    Running {
        /// The group was stopped by a pause and not continued since.
        paused: bool,
    },
    /// A kill, the spawn timeout or an eviction settled the status; the
    /// child has been signalled and has not exited yet.
    Ending {
        settled: Settled,
        paused: bool,
        /// The timer that turns a catchable kill into `SIGKILL` runs.
        escalation_armed: bool,
    },
    /// The child exited; its output drains until both pipes close or the
    /// drain grace passes.
    Draining {
        settled: Settled,
        /// The group was SIGKILLed and the readers told to read what the
        /// pipes hold and close: the last pipe closing ends the drain.
        flushing: bool,
    },
    /// The pipes are closed; the OS worker sweeps the tree (orphan reaping,
    /// escapee hunting) before the child is reaped.
    Sweeping { settled: Settled },
    /// Done: every caller from now on gets this snapshot.
    Terminal {
        snapshot: Box<Snapshot>,
        /// A caller has been given the terminal snapshot.
        observed: bool,
    },
}

/// What the process actor must do after a transition, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Send this signal to the child's process group.
    Signal(RawSignal),
    /// Arm the timer that escalates to `SIGKILL`, after this grace (the
    /// configured kill grace when `None`).
    ArmEscalation(Option<Duration>),
    /// Arm the drain-grace timer.
    ArmDrainGrace,
    /// Tell the readers to read what the pipes hold and close.
    FlushPipes,
    /// Have the OS worker sweep the tree, then report `SweepDone`.
    Sweep,
    /// Reap the child and become terminal.
    Reap,
    /// The snapshot changed (paused or continued): publish it.
    Publish,
}

/// The effects of one transition: at most four.
pub(crate) type Effects = Vec<Effect>;

/// The state machine of one process: its phase and its open pipes.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: Phase,
    open_streams: u8,
    /// The tree is swept before the reap (orphan reaping or escapee
    /// hunting is on).
    sweep: bool,
}

impl Lifecycle {
    /// A running process with both output pipes open.
    pub(crate) fn new(sweep: bool) -> Self {
        Lifecycle {
            phase: Phase::Running { paused: false },
            open_streams: 2,
            sweep,
        }
    }

    /// The current phase.
    #[cfg(test)]
    pub(crate) fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The terminal snapshot, once there is one.
    pub(crate) fn terminal(&self) -> Option<&Snapshot> {
        match &self.phase {
            Phase::Terminal { snapshot, .. } => Some(snapshot),
            _ => None,
        }
    }

    /// Whether the child has been seen to exit.
    pub(crate) fn leader_exited(&self) -> bool {
        matches!(
            self.phase,
            Phase::Draining { .. } | Phase::Sweeping { .. } | Phase::Terminal { .. }
        )
    }

    /// Whether snapshots say `paused`.
    pub(crate) fn paused(&self) -> bool {
        matches!(
            self.phase,
            Phase::Running { paused: true } | Phase::Ending { paused: true, .. }
        )
    }

    /// Pauses (`true`) or continues the group. Does nothing once the child
    /// has exited, or when it is already so.
    pub(crate) fn pause(&mut self, pause: bool) -> Effects {
        let (Phase::Running { paused } | Phase::Ending { paused, .. }) = &mut self.phase else {
            return Vec::new();
        };
        if *paused == pause {
            return Vec::new();
        }
        *paused = pause;
        let signal = if pause {
            RawSignal::STOP
        } else {
            RawSignal::CONT
        };
        vec![Effect::Signal(signal), Effect::Publish]
    }

    /// A kill with `signal`, escalating to `SIGKILL` after `grace` (the
    /// configured kill grace when `None`). Settles `killed` unless a status
    /// is settled already.
    pub(crate) fn kill(&mut self, signal: Signal, grace: Option<Duration>) -> Effects {
        let mut effects = self.start_ending(Status::Killed);
        if let Phase::Ending {
            settled,
            paused,
            escalation_armed,
        } = &mut self.phase
        {
            effects.push(Effect::Signal(signal.raw()));
            if signal != Signal::KILL {
                settled.sent_catchable = true;
                if *paused {
                    // A stopped process cannot act on a catchable signal.
                    effects.push(Effect::Signal(RawSignal::CONT));
                    *paused = false;
                }
                if !*escalation_armed {
                    *escalation_armed = true;
                    effects.push(Effect::ArmEscalation(grace));
                }
            }
        }
        effects
    }

    /// The spawn timeout passed, or the registry evicted the handle: settle
    /// `status` (unless settled) and SIGKILL the group.
    pub(crate) fn force_end(&mut self, status: Status) -> Effects {
        let mut effects = self.start_ending(status);
        if matches!(self.phase, Phase::Ending { .. }) {
            effects.push(Effect::Signal(RawSignal::KILL));
        }
        effects
    }

    /// Settles `status` for a kill, the timeout or an eviction. While the
    /// child runs, the phase becomes (or stays) `Ending`; once it has
    /// exited, only the drain is left, and it ends now.
    fn start_ending(&mut self, status: Status) -> Effects {
        match &self.phase {
            Phase::Running { paused } => {
                self.phase = Phase::Ending {
                    settled: Settled::new(status),
                    paused: *paused,
                    escalation_armed: false,
                };
                Vec::new()
            }
            Phase::Draining { .. } => self.finish(),
            Phase::Ending { .. } | Phase::Sweeping { .. } | Phase::Terminal { .. } => Vec::new(),
        }
    }

    /// The child exited: settle `exited` unless something settled first,
    /// then drain (or end at once when the pipes are already closed).
    pub(crate) fn leader_exited_now(&mut self) -> Effects {
        let settled = match &self.phase {
            Phase::Running { .. } => Settled::new(Status::Exited),
            Phase::Ending { settled, .. } => *settled,
            Phase::Draining { .. } | Phase::Sweeping { .. } | Phase::Terminal { .. } => {
                return Vec::new();
            }
        };
        self.phase = Phase::Draining {
            settled,
            flushing: false,
        };
        if self.open_streams == 0 {
            self.finish()
        } else {
            vec![Effect::ArmDrainGrace]
        }
    }

    /// One output pipe closed.
    pub(crate) fn stream_closed(&mut self) -> Effects {
        self.open_streams = self.open_streams.saturating_sub(1);
        if self.open_streams == 0 && matches!(self.phase, Phase::Draining { .. }) {
            self.finish()
        } else {
            Vec::new()
        }
    }

    /// The drain grace passed: end the drain.
    pub(crate) fn drain_expired(&mut self) -> Effects {
        match self.phase {
            Phase::Draining { .. } => self.finish(),
            _ => Vec::new(),
        }
    }

    /// The kill grace passed: SIGKILL a child that still runs, or end the
    /// drain of one that exited.
    pub(crate) fn escalate(&mut self) -> Effects {
        match self.phase {
            Phase::Ending { .. } => vec![Effect::Signal(RawSignal::KILL)],
            Phase::Draining { .. } => self.finish(),
            _ => Vec::new(),
        }
    }

    /// Ends the drain after the child exited: SIGKILLs what is left of the
    /// group while the child is unreaped (so the group id is still ours),
    /// then flushes the pipes, sweeps, or reaps, whichever is next.
    fn finish(&mut self) -> Effects {
        let Phase::Draining { settled, flushing } = &mut self.phase else {
            return Vec::new();
        };
        let mut effects = vec![Effect::Signal(RawSignal::KILL)];
        if self.open_streams > 0 {
            if !*flushing {
                *flushing = true;
                effects.push(Effect::FlushPipes);
            }
            // The last `stream_closed` calls this again.
            return effects;
        }
        let settled = *settled;
        if self.sweep {
            self.phase = Phase::Sweeping { settled };
            effects.push(Effect::Sweep);
        } else {
            effects.push(Effect::Reap);
        }
        effects
    }

    /// The OS worker's sweep is done: reap.
    pub(crate) fn sweep_done(&mut self) -> Effects {
        match self.phase {
            Phase::Sweeping { .. } => vec![Effect::Reap],
            _ => Vec::new(),
        }
    }

    /// The actor is stopping with the handle not terminal: settle `killed`
    /// unless settled. The actor then kills, waits and reaps itself.
    pub(crate) fn stopping(&mut self) {
        if let Phase::Running { .. } = self.phase {
            self.phase = Phase::Ending {
                settled: Settled::new(Status::Killed),
                paused: false,
                escalation_armed: true,
            };
        }
    }

    /// The terminal status, given how the reaped child ended (`None` when
    /// it could not be reaped). Only `SIGKILL` was sent and it cannot be
    /// caught, so a killed child that still exited with a code had exited
    /// before the kill arrived: that is `exited`.
    pub(crate) fn final_status(&self, exit_code: Option<i32>) -> Status {
        let settled = match &self.phase {
            Phase::Running { .. } => return Status::Exited,
            Phase::Terminal { snapshot, .. } => return snapshot.status,
            Phase::Ending { settled, .. }
            | Phase::Draining { settled, .. }
            | Phase::Sweeping { settled } => *settled,
        };
        match settled.status {
            Status::Killed | Status::TimedOut if exit_code.is_some() && !settled.sent_catchable => {
                Status::Exited
            }
            status => status,
        }
    }

    /// Enters the terminal phase with `snapshot`; `observed` says whether
    /// a caller is being given it now.
    pub(crate) fn end(&mut self, snapshot: Snapshot, observed: bool) {
        self.phase = Phase::Terminal {
            snapshot: Box::new(snapshot),
            observed,
        };
    }

    /// Records that a caller was given the terminal snapshot. Returns true
    /// the first time, when the registry must be told.
    pub(crate) fn observe(&mut self) -> bool {
        match &mut self.phase {
            Phase::Terminal { observed, .. } if !*observed => {
                *observed = true;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect::*;

    fn settled(lc: &Lifecycle) -> Option<Settled> {
        match lc.phase() {
            Phase::Ending { settled, .. }
            | Phase::Draining { settled, .. }
            | Phase::Sweeping { settled } => Some(*settled),
            _ => None,
        }
    }

    #[test]
    fn a_clean_exit_drains_then_reaps() {
        let mut lc = Lifecycle::new(false);
        assert_eq!(lc.leader_exited_now(), vec![ArmDrainGrace]);
        assert_eq!(settled(&lc).map(|s| s.status), Some(Status::Exited));
        assert_eq!(lc.stream_closed(), vec![]);
        assert_eq!(lc.stream_closed(), vec![Signal(RawSignal::KILL), Reap]);
        assert_eq!(lc.final_status(Some(0)), Status::Exited);
    }

    #[test]
    fn pipes_closed_before_the_exit_end_at_the_exit() {
        let mut lc = Lifecycle::new(true);
        lc.stream_closed();
        lc.stream_closed();
        assert_eq!(lc.leader_exited_now(), vec![Signal(RawSignal::KILL), Sweep]);
        assert!(matches!(lc.phase(), Phase::Sweeping { .. }));
        assert_eq!(lc.sweep_done(), vec![Reap]);
    }

    #[test]
    fn the_drain_grace_flushes_once_and_the_last_close_reaps() {
        let mut lc = Lifecycle::new(false);
        lc.leader_exited_now();
        assert_eq!(
            lc.drain_expired(),
            vec![Signal(RawSignal::KILL), FlushPipes]
        );
        // A kill in the drain ends it too, without flushing twice.
        assert_eq!(
            lc.kill(crate::messages::Signal::TERM, None),
            vec![Signal(RawSignal::KILL)]
        );
        lc.stream_closed();
        assert_eq!(lc.stream_closed(), vec![Signal(RawSignal::KILL), Reap]);
        // The exit came first: the kill does not change the status.
        assert_eq!(lc.final_status(Some(3)), Status::Exited);
    }

    #[test]
    fn a_catchable_kill_escalates_once_and_keeps_killed() {
        let mut lc = Lifecycle::new(false);
        let grace = Some(Duration::from_millis(5));
        assert_eq!(
            lc.kill(crate::messages::Signal::TERM, grace),
            vec![Signal(RawSignal::TERM), ArmEscalation(grace)]
        );
        // A second kill signals again but arms nothing new.
        assert_eq!(
            lc.kill(crate::messages::Signal::INT, None),
            vec![Signal(RawSignal::INT)]
        );
        assert_eq!(lc.escalate(), vec![Signal(RawSignal::KILL)]);
        lc.leader_exited_now();
        lc.stream_closed();
        lc.stream_closed();
        // The child caught SIGTERM and exited with a code: still killed.
        assert_eq!(lc.final_status(Some(0)), Status::Killed);
    }

    #[test]
    fn sigkill_with_an_exit_code_means_the_exit_came_first() {
        let mut lc = Lifecycle::new(false);
        assert_eq!(
            lc.kill(crate::messages::Signal::KILL, None),
            vec![Signal(RawSignal::KILL)]
        );
        lc.leader_exited_now();
        assert_eq!(lc.final_status(Some(0)), Status::Exited);
        assert_eq!(lc.final_status(None), Status::Killed);
    }

    #[test]
    fn the_first_settled_status_wins() {
        let mut lc = Lifecycle::new(false);
        lc.force_end(Status::TimedOut);
        lc.kill(crate::messages::Signal::KILL, None);
        lc.leader_exited_now();
        assert_eq!(settled(&lc).map(|s| s.status), Some(Status::TimedOut));
        assert_eq!(lc.final_status(None), Status::TimedOut);
    }

    #[test]
    fn a_catchable_kill_continues_a_paused_group() {
        let mut lc = Lifecycle::new(false);
        assert_eq!(lc.pause(true), vec![Signal(RawSignal::STOP), Publish]);
        assert_eq!(lc.pause(true), vec![]);
        assert!(lc.paused());
        let effects = lc.kill(crate::messages::Signal::TERM, None);
        assert_eq!(
            effects,
            vec![
                Signal(RawSignal::TERM),
                Signal(RawSignal::CONT),
                ArmEscalation(None)
            ]
        );
        assert!(!lc.paused());
    }

    #[test]
    fn pause_after_the_exit_does_nothing() {
        let mut lc = Lifecycle::new(false);
        lc.leader_exited_now();
        assert_eq!(lc.pause(true), vec![]);
        assert!(!lc.paused());
    }

    #[test]
    fn escalation_after_the_exit_ends_the_drain() {
        let mut lc = Lifecycle::new(false);
        lc.kill(crate::messages::Signal::TERM, None);
        lc.leader_exited_now();
        assert_eq!(lc.escalate(), vec![Signal(RawSignal::KILL), FlushPipes]);
    }

    #[test]
    fn inputs_after_the_end_change_nothing() {
        let mut lc = Lifecycle::new(false);
        lc.leader_exited_now();
        lc.stream_closed();
        lc.stream_closed();
        let snapshot = crate::messages::Snapshot::running_for_tests();
        lc.end(snapshot, false);
        assert!(lc.terminal().is_some());
        for effects in [
            lc.kill(crate::messages::Signal::KILL, None),
            lc.force_end(Status::TimedOut),
            lc.leader_exited_now(),
            lc.stream_closed(),
            lc.drain_expired(),
            lc.escalate(),
            lc.sweep_done(),
            lc.pause(true),
        ] {
            assert_eq!(effects, vec![]);
        }
        assert!(lc.observe());
        assert!(!lc.observe());
    }
}
