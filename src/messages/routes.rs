//! [`Routes`]: the registry's index of its live handles, which the
//! [`Registry`](crate::Registry) handle reads to reach a handle without
//! going through the registry's mailbox.
//!
//! The registry actor is the only writer ([`RouteBook`]); readers never
//! block and never wait for it: a look-up is one probe of a lock-free hash
//! map ([`papaya`], whose removed entries are freed once no reader can
//! still see them). The map holds a handle from the moment the registry
//! stores it (running) until the registry forgets it (release, eviction,
//! stop); a finished handle's entry holds its terminal snapshot. Receipts,
//! spawns still starting and queued spawns are not in it: a look-up that
//! finds nothing says only "ask the registry", never "unknown".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ractor::ActorRef;

use super::{HandleId, ProcessMsg, Snapshot};

/// What a reader learns about one handle: `F` is what it made of a
/// finished handle's snapshot.
#[derive(Debug)]
pub(crate) enum Route<F> {
    /// Running: its process actor answers for it.
    Running(ActorRef<ProcessMsg>),
    /// Finished: the answer made from its terminal snapshot, exactly as
    /// the registry holds it. `first_sight`: this reader is the first to
    /// be given it (and asked for it as an answer that observes), so it
    /// must tell the registry.
    Finished { answer: F, first_sight: bool },
}

/// One handle in the map.
#[derive(Debug)]
struct Slot {
    /// Set by a caller that sent a request about the handle through the
    /// registry's mailbox without waiting for its answer
    /// (`release_nowait`, `kill_nowait`): later requests must not overtake
    /// it, so they take the mailbox too. Shared by the handle's running
    /// and finished entries, so that finishing cannot lose it.
    detour: Arc<AtomicBool>,
    way: Way,
}

#[derive(Debug)]
enum Way {
    Running(ActorRef<ProcessMsg>),
    Finished {
        /// Behind an `Arc`: a reader shares it instead of copying it.
        snapshot: Arc<Snapshot>,
        /// A caller has been given the terminal snapshot (set once; the
        /// one who sets it tells the registry).
        seen: AtomicBool,
    },
}

/// The map. Handle ids are not chosen by callers (the registry numbers
/// them), so a fast unkeyed-quality hash is enough.
type Map = papaya::HashMap<HandleId, Slot, foldhash::fast::RandomState>;

/// Where a [`Registry`](crate::Registry) handle receives the registry's
/// index: set once, by the registry, when it handles the handle's
/// `Report::Routes`; until then the handle asks the registry.
pub(crate) type RoutesCell = Arc<OnceLock<Routes>>;

/// The readers' side of the index: cheap to clone, every clone reads the
/// same map. See the module docs.
#[derive(Clone)]
pub(crate) struct Routes(Arc<Map>);

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the map: a `Registry` in a log line must stay one line.
        f.debug_struct("Routes")
            .field("handles", &self.0.len())
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// Where `id` is now, or `None` when the map does not hold it (or a
    /// caller sent a request about it that must not be overtaken): ask the
    /// registry. `observes`: the answer will be given to a waiting caller
    /// as the handle's status (poll, wait, kill), so a finished handle is
    /// marked seen. A finished handle's answer is `finished` of its
    /// snapshot, made while the entry is held: a caller that wants a copy
    /// makes it from the map's own, without a reference count in between.
    #[inline]
    pub(crate) fn get<F>(
        &self,
        id: HandleId,
        observes: bool,
        finished: impl FnOnce(&Arc<Snapshot>) -> F,
    ) -> Option<Route<F>> {
        let guard = self.0.guard();
        let slot = self.0.get(&id, &guard)?;
        if slot.detour.load(Ordering::Acquire) {
            return None;
        }
        match &slot.way {
            Way::Running(actor) => Some(Route::Running(actor.clone())),
            Way::Finished { snapshot, seen } => {
                // The swap only while unseen: a seen handle costs a load.
                let first_sight =
                    observes && !seen.load(Ordering::Relaxed) && !seen.swap(true, Ordering::AcqRel);
                Some(Route::Finished {
                    answer: finished(snapshot),
                    first_sight,
                })
            }
        }
    }

    /// Sends every later request about `id` through the registry's
    /// mailbox, behind one just sent there without waiting for its answer.
    pub(crate) fn detour(&self, id: HandleId) {
        if let Some(slot) = self.0.pin().get(&id) {
            slot.detour.store(true, Ordering::Release);
        }
    }
}

/// The writer's side of the index, owned by the registry actor: the only
/// one that adds, finishes and removes handles.
#[derive(Debug)]
pub(crate) struct RouteBook {
    routes: Routes,
}

impl Default for RouteBook {
    fn default() -> Self {
        RouteBook {
            routes: Routes(Arc::new(
                papaya::HashMap::builder()
                    .hasher(Default::default())
                    // An entry the registry replaces or removes is freed
                    // as soon as no reader holds it, not once a batch of
                    // 32 has gathered: a finished entry holds the handle's
                    // output, which a release must free. The cost is a
                    // barrier per replacement (about 0.2 µs).
                    .collector(seize::Collector::new().batch_size(1))
                    .build(),
            )),
        }
    }
}

impl RouteBook {
    /// A reader of this map.
    pub(crate) fn routes(&self) -> Routes {
        self.routes.clone()
    }

    /// How many handles the map holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.routes.0.len()
    }

    /// Adds a running handle.
    pub(crate) fn insert(&mut self, id: HandleId, actor: ActorRef<ProcessMsg>) {
        let slot = Slot {
            detour: Arc::default(),
            way: Way::Running(actor),
        };
        self.routes.0.pin().insert(id, slot);
    }

    /// Stores a handle's terminal snapshot in place of its actor.
    /// `seen`: a caller has already been given it.
    pub(crate) fn finish(&mut self, snapshot: &Snapshot, seen: bool) {
        let id = snapshot.handle_id;
        let map = self.routes.0.pin();
        // The registry is the only writer: nothing changes the entry
        // between this read and the insert.
        let Some(detour) = map.get(&id).map(|running| running.detour.clone()) else {
            return;
        };
        map.insert(
            id,
            Slot {
                detour,
                way: Way::Finished {
                    snapshot: Arc::new(snapshot.clone()),
                    seen: AtomicBool::new(seen),
                },
            },
        );
    }

    /// Records that a caller was given the handle's terminal snapshot.
    pub(crate) fn observe(&mut self, id: HandleId) {
        if let Some(Slot {
            way: Way::Finished { seen, .. },
            ..
        }) = self.routes.0.pin().get(&id)
        {
            seen.store(true, Ordering::Release);
        }
    }

    /// Forgets a handle.
    pub(crate) fn remove(&mut self, id: HandleId) {
        self.routes.0.pin().remove(&id);
    }

    /// Forgets every handle (the registry is stopping).
    pub(crate) fn clear(&mut self) {
        self.routes.0.pin().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Containment;

    /// An actor that answers nothing: the table only stores its reference.
    struct Idle;

    impl ractor::Actor for Idle {
        type Msg = ProcessMsg;
        type State = ();
        type Arguments = ();

        async fn pre_start(
            &self,
            _myself: ActorRef<ProcessMsg>,
            _args: (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }
    }

    async fn actor() -> ActorRef<ProcessMsg> {
        let (actor, _) = ractor::Actor::spawn(None, Idle, ()).await.unwrap();
        actor
    }

    fn finished(id: HandleId) -> Snapshot {
        let mut snapshot = Snapshot::started(
            id,
            id.pid(),
            "true".into(),
            time::OffsetDateTime::UNIX_EPOCH,
            None,
            Containment::ProcessGroup,
        );
        snapshot.status = crate::messages::Status::Exited;
        snapshot
    }

    fn running(route: Option<Route<Arc<Snapshot>>>) -> bool {
        matches!(route, Some(Route::Running(_)))
    }

    #[tokio::test]
    async fn a_handle_is_found_until_removed_and_finishing_keeps_it() {
        let mut book = RouteBook::default();
        let routes = book.routes();
        let actor = actor().await;
        let id = HandleId::next(1);
        assert!(routes.get(id, true, Arc::clone).is_none());
        book.insert(id, actor.clone());
        assert!(running(routes.get(id, true, Arc::clone)));
        book.finish(&finished(id), false);
        let Some(Route::Finished {
            answer: snapshot,
            first_sight,
        }) = routes.get(id, true, Arc::clone)
        else {
            panic!("finished handle not found");
        };
        assert_eq!(snapshot.handle_id, id);
        assert!(first_sight, "the first caller to see it is told so");
        assert!(matches!(
            routes.get(id, true, Arc::clone),
            Some(Route::Finished {
                first_sight: false,
                ..
            })
        ));
        book.remove(id);
        assert!(routes.get(id, true, Arc::clone).is_none());
        assert_eq!(book.len(), 0);
        actor.stop(None);
    }

    #[tokio::test]
    async fn only_an_observing_look_up_marks_a_finished_handle_seen() {
        let mut book = RouteBook::default();
        let routes = book.routes();
        let actor = actor().await;
        let (a, b) = (HandleId::next(1), HandleId::next(1));
        book.insert(a, actor.clone());
        book.insert(b, actor.clone());
        book.finish(&finished(a), false);
        book.finish(&finished(b), false);
        assert!(matches!(
            routes.get(a, false, Arc::clone),
            Some(Route::Finished {
                first_sight: false,
                ..
            })
        ));
        assert!(matches!(
            routes.get(a, true, Arc::clone),
            Some(Route::Finished {
                first_sight: true,
                ..
            })
        ));
        // Seen through the registry: nobody reading the table tells it again.
        book.observe(b);
        assert!(matches!(
            routes.get(b, true, Arc::clone),
            Some(Route::Finished {
                first_sight: false,
                ..
            })
        ));
        actor.stop(None);
    }

    #[tokio::test]
    async fn a_detoured_handle_is_left_to_the_registry_even_once_finished() {
        let mut book = RouteBook::default();
        let routes = book.routes();
        let actor = actor().await;
        let (id, other) = (HandleId::next(1), HandleId::next(1));
        book.insert(id, actor.clone());
        book.insert(other, actor.clone());
        routes.detour(id);
        assert!(routes.get(id, true, Arc::clone).is_none());
        // A release sent without waiting may still be queued behind the
        // end: the finished entry must not answer either.
        book.finish(&finished(id), false);
        assert!(routes.get(id, true, Arc::clone).is_none());
        assert!(
            running(routes.get(other, true, Arc::clone)),
            "only that handle"
        );
        actor.stop(None);
    }

    #[tokio::test]
    async fn thousands_of_handles_grow_and_shrink_the_table_without_losing_one() {
        let mut book = RouteBook::default();
        let routes = book.routes();
        let actor = actor().await;
        let ids: Vec<HandleId> = (0..5_000).map(|_| HandleId::next(1)).collect();
        for id in &ids {
            book.insert(*id, actor.clone());
        }
        assert!(
            ids.iter()
                .all(|id| running(routes.get(*id, true, Arc::clone)))
        );
        // Remove all but every tenth, then churn: removed slots are reused
        // or dropped at the next rebuild, and the rest stay found.
        for (n, id) in ids.iter().enumerate() {
            if n % 10 != 0 {
                book.remove(*id);
            }
        }
        for _ in 0..20_000 {
            let id = HandleId::next(1);
            book.insert(id, actor.clone());
            book.remove(id);
            assert!(routes.get(id, true, Arc::clone).is_none());
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(
                running(routes.get(*id, true, Arc::clone)),
                n % 10 == 0,
                "handle {n}"
            );
        }
        assert_eq!(book.len(), 500);
        book.clear();
        assert!(routes.get(ids[0], true, Arc::clone).is_none());
        actor.stop(None);
    }

    #[test]
    fn readers_on_other_threads_find_every_handle_present_throughout() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let actor = runtime.block_on(actor());
        let mut book = RouteBook::default();
        let routes = book.routes();
        // These stay in the table while the writer churns around them.
        let kept: Vec<HandleId> = (0..100).map(|_| HandleId::next(1)).collect();
        for id in &kept {
            book.insert(*id, actor.clone());
        }
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let routes = routes.clone();
                let kept = kept.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        for id in &kept {
                            assert!(running(routes.get(*id, true, Arc::clone)), "lost {id}");
                            reads += 1;
                        }
                    }
                    reads
                })
            })
            .collect();
        let mut churn = Vec::new();
        for round in 0..200 {
            for _ in 0..100 {
                let id = HandleId::next(1);
                book.insert(id, actor.clone());
                churn.push(id);
            }
            if round % 2 == 1 {
                for id in churn.drain(..) {
                    book.remove(id);
                }
            }
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
        actor.stop(None);
    }
}
