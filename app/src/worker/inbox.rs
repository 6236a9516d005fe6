//! Work for the engine, in arrival order. The message handler pushes; one task takes jobs one
//! at a time, so the engine is never used by two jobs at once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::protocol::ToWorker;

/// Work for the engine: the page's messages, and the worker's own news.
pub enum Work {
    Page(ToWorker),
    /// WebGPU, started beside the CPU for Auto, is ready to be measured (`speed`).
    GpuReady,
}

/// Work waiting its turn.
pub struct Job {
    pub msg: Work,
    /// When it arrived (ms on the worker's clock).
    pub at: f64,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    waker: Option<Waker>,
}

#[derive(Clone, Default)]
pub struct Inbox(Rc<RefCell<Queue>>);

impl Inbox {
    pub fn push(&self, job: Job) {
        let mut q = self.0.borrow_mut();
        q.jobs.push_back(job);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    /// The next job, waiting for one if need be.
    pub fn next(&self) -> impl Future<Output = Job> + '_ {
        Next(self)
    }
}

struct Next<'a>(&'a Inbox);

impl Future for Next<'_> {
    type Output = Job;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Job> {
        let mut q = (self.0).0.borrow_mut();
        match q.jobs.pop_front() {
            Some(job) => Poll::Ready(job),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
