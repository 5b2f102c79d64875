//! The writer thread's inbox: a bounded frame queue and an unbounded control queue behind one
//! condition variable. Frames never wait: when the disk cannot keep up the queue is full and
//! the frame is dropped from the recording (counted), so live streaming is never blocked by
//! storage. Control commands (start/stop/delete/retention) are few and always accepted, and
//! the writer serves them before the next frame batch.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub struct FrameRecord {
    pub ts_ms: i64,
    pub session_id: i64,
    pub jpeg: Bytes,
}

pub struct Inbox<C> {
    pub frames: Vec<FrameRecord>,
    pub controls: Vec<C>,
    pub closed: bool,
}

struct State<C> {
    frames: VecDeque<FrameRecord>,
    controls: VecDeque<C>,
    closed: bool,
}

pub struct WriterQueue<C> {
    state: Mutex<State<C>>,
    wake: Condvar,
    capacity: usize,
}

impl<C> WriterQueue<C> {
    pub fn new(capacity: usize) -> WriterQueue<C> {
        let state = State { frames: VecDeque::with_capacity(capacity), controls: VecDeque::new(), closed: false };
        WriterQueue { state: Mutex::new(state), wake: Condvar::new(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame unless the queue is full (or closed); `false` = dropped.
    pub fn push_frame(&self, frame: FrameRecord) -> bool {
        let mut s = self.lock();
        if s.closed || s.frames.len() >= self.capacity {
            return false;
        }
        s.frames.push_back(frame);
        drop(s);
        self.wake.notify_one();
        true
    }

    /// Queues a control command; `Err` gives it back when the writer has shut down.
    pub fn push_control(&self, c: C) -> Result<(), C> {
        let mut s = self.lock();
        if s.closed {
            return Err(c);
        }
        s.controls.push_back(c);
        drop(s);
        self.wake.notify_one();
        Ok(())
    }

    /// Asks the writer to finish: queued work is still handed out, then `closed` is set.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything queued, waiting up to `timeout` for something to arrive.
    pub fn take(&self, timeout: Duration) -> Inbox<C> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        while s.frames.is_empty() && s.controls.is_empty() && !s.closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = self.wake.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        Inbox { frames: s.frames.drain(..).collect(), controls: s.controls.drain(..).collect(), closed: s.closed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ts: i64) -> FrameRecord {
        FrameRecord { ts_ms: ts, session_id: 1, jpeg: Bytes::from_static(b"x") }
    }

    #[test]
    fn frames_are_dropped_when_full_controls_never() {
        let q: WriterQueue<u32> = WriterQueue::new(2);
        assert!(q.push_frame(frame(1)));
        assert!(q.push_frame(frame(2)));
        assert!(!q.push_frame(frame(3)), "full: dropped, not blocked");
        assert!(q.push_control(7).is_ok());
        let inbox = q.take(Duration::ZERO);
        assert_eq!(inbox.frames.len(), 2);
        assert_eq!(inbox.controls, vec![7]);
        q.close();
        assert!(!q.push_frame(frame(4)));
        assert_eq!(q.push_control(8), Err(8));
        assert!(q.take(Duration::from_secs(5)).closed, "closed wakes the writer at once");
    }

    #[test]
    fn take_waits_for_work() {
        let q = std::sync::Arc::new(WriterQueue::<u32>::new(4));
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.take(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(50));
        q.push_frame(frame(1));
        let inbox = t.join().unwrap();
        assert_eq!(inbox.frames.len(), 1);
    }
}
