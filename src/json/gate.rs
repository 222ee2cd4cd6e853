//! [`Gate`]: a count with a limit that tasks wait to get under, without a
//! lock on the common path.
//!
//! The server takes and gives back a share of a connection's bounds for
//! every request (a request slot, its line's bytes, a render slot). Tokio's
//! `Semaphore` takes its waiter list's lock on every release, and the
//! server's CPU time per `poll` grew by half with three of them. A gate
//! entered and left without contention is a few atomic operations; only a
//! leave while someone waits touches the `Notify`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// A count of what is in use, and a limit.
#[derive(Debug)]
pub(crate) struct Gate {
    used: AtomicUsize,
    limit: usize,
    /// Tasks waiting in [`enter`](Self::enter).
    waiters: AtomicUsize,
    /// Told when something leaves while someone waits.
    left: Notify,
}

/// A share of a [`Gate`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Pass {
    gate: Arc<Gate>,
    amount: usize,
}

impl Gate {
    /// A gate that lets in up to `limit`.
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Gate {
            used: AtomicUsize::new(0),
            limit,
            waiters: AtomicUsize::new(0),
            left: Notify::new(),
        })
    }

    /// Takes `amount` if it fits now: when the total stays within the
    /// limit, or when nothing is in (so that an amount above the limit
    /// gets in alone rather than never).
    pub(crate) fn try_enter(self: &Arc<Self>, amount: usize) -> Option<Pass> {
        let mut used = self.used.load(Ordering::SeqCst);
        loop {
            if used != 0 && used.saturating_add(amount) > self.limit {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used.saturating_add(amount),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => {
                    return Some(Pass {
                        gate: self.clone(),
                        amount,
                    });
                }
                Err(now) => used = now,
            }
        }
    }

    /// Waits until `amount` fits (see [`try_enter`](Self::try_enter)),
    /// then takes it.
    ///
    /// Cancel safety: cancel safe; nothing is taken unless it returns.
    pub(crate) async fn enter(self: &Arc<Self>, amount: usize) -> Pass {
        if let Some(pass) = self.try_enter(amount) {
            return pass;
        }
        let _waiting = Waiting::new(&self.waiters);
        loop {
            let left = self.left.notified();
            let mut left = std::pin::pin!(left);
            // Registered before the check: a leave in between wakes us.
            left.as_mut().enable();
            if let Some(pass) = self.try_enter(amount) {
                return pass;
            }
            left.await;
        }
    }

    /// What is in now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.gate.used.fetch_sub(self.amount, Ordering::SeqCst);
        // Sequentially consistent with the waiter's count-then-check: if
        // it is not counted yet, its check sees what just left.
        if self.gate.waiters.load(Ordering::SeqCst) > 0 {
            self.gate.left.notify_waiters();
        }
    }
}

/// Counts a waiting task for as long as it lives (also when the wait is
/// cancelled).
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    pub(crate) fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn lets_in_up_to_the_limit_and_waits_for_a_leave() {
        let gate = Gate::new(10);
        let six = gate.enter(6).await;
        let four = gate.enter(4).await;
        assert!(gate.try_enter(1).is_none());
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(four);
        let three = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("let in once four left")
            .unwrap();
        assert_eq!(gate.used(), 9);
        drop((six, three));
        assert_eq!(gate.used(), 0);
    }

    #[tokio::test]
    async fn an_amount_above_the_limit_gets_in_alone() {
        let gate = Gate::new(10);
        let big = gate.enter(50).await;
        assert!(gate.try_enter(1).is_none());
        drop(big);
        let one = gate.try_enter(1).unwrap();
        assert!(gate.try_enter(50).is_none());
        drop(one);
    }

    #[tokio::test]
    async fn many_waiters_all_get_in_as_passes_leave() {
        let gate = Gate::new(2);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let gate = gate.clone();
            tasks.spawn(async move {
                let _pass = gate.enter(1).await;
                tokio::task::yield_now().await;
            });
        }
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("every waiter got in");
        assert_eq!(gate.used(), 0);
    }
}
