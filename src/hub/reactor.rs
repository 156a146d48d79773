//! The hub's epoll side: a `mio::Poll`, its event buffer, and the waker
//! token through which other threads interrupt a blocked poll.

use std::cell::{Cell, RefCell};
use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token};

/// The token of the cross-thread `mio::Waker`.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    /// Greenlets (or the root) currently waiting for fd readiness.
    io_waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<(Reactor, mio::Waker)> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok((
            Reactor {
                poll: RefCell::new(poll),
                events: RefCell::new(Events::with_capacity(1024)),
                io_waiters: Cell::new(0),
            },
            waker,
        ))
    }

    /// Whether any fd wait could still wake someone.
    pub(crate) fn has_waiters(&self) -> bool {
        self.io_waiters.get() > 0
    }

    /// Waits for events up to `timeout` (`None`: forever) and dispatches
    /// them. Interrupted waits (`EINTR`) return normally.
    pub(crate) fn poll(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => panic!("greenlet: epoll_wait failed: {e}"),
        }
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                // The remote queue is drained by the loop right after.
                continue;
            }
        }
    }
}
