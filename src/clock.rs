//! [`Clock`]: where a registry's timestamps come from.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

/// The source of `started_at` and `ended_at`. The system clock by default;
/// tests can pass a clock that returns fixed or stepped times.
///
/// ```
/// use procward::{Clock, RegistryConfig};
/// use time::macros::datetime;
///
/// let fixed = Clock::from_fn(|| datetime!(2030-01-01 0:00 UTC));
/// let config = RegistryConfig::default().clock(fixed);
/// assert_eq!(config.clock.now(), datetime!(2030-01-01 0:00 UTC));
/// ```
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    /// The system clock, in UTC.
    pub fn system() -> Self {
        Clock(Arc::new(OffsetDateTime::now_utc))
    }

    /// A clock that asks `now` for the time.
    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// The time now, by this clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Two clocks are equal when they are the same clock (clones of one).
impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Clock {}
