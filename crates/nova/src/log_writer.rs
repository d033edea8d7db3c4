//! The log writer of the `nova` binary: lines are appended to an in-memory buffer by the thread
//! that logs them and reach stdout in batches: when the buffer passes [`FLUSH_AT_BYTES`] (written
//! by the thread that filled it), every [`FLUSH_EVERY`] (by a background thread), and when the
//! [`FlushGuard`] is dropped at shutdown. Nothing is dropped: a full buffer is written out in
//! place, so a burst slows the logging thread down rather than losing lines.
//!
//! Written by hand because the library writer (`tracing_appender::non_blocking`) hands every line
//! to its writer thread through a channel and wakes that thread for nearly every one: a futex
//! wake and two context switches per request, measured at ~10 µs of CPU per request on a 2-core
//! machine (docs/benchmarks.md, request cost), against ~1 µs for appending to a buffer. A line
//! may reach stdout up to `FLUSH_EVERY` late, and a process killed with SIGKILL loses at most
//! that much of its log.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// A buffer this large is written out at once by the thread that filled it.
const FLUSH_AT_BYTES: usize = 64 * 1024;

/// How often the background thread writes out whatever is buffered.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The lines not yet written, and where they go.
struct Buffer {
    bytes: Vec<u8>,
    sink: Box<dyn Write + Send>,
}

impl Buffer {
    fn write_out(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        // A log line that cannot be written has nowhere else to go.
        let _ = self
            .sink
            .write_all(&self.bytes)
            .and_then(|()| self.sink.flush());
        self.bytes.clear();
    }
}

struct Shared {
    buffer: Mutex<Buffer>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    /// Writes out the buffered lines. The buffer stays locked while they are written, so lines
    /// reach the sink in the order they were logged.
    fn flush(&self) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.write_out();
        }
    }
}

/// The `MakeWriter` to give the subscriber.
#[derive(Clone)]
pub struct BatchedStdout(Arc<Shared>);

/// Stops the background thread and writes out what is buffered, when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer batching lines to stdout, and the guard that flushes it at shutdown.
pub fn batched_stdout() -> (BatchedStdout, FlushGuard) {
    batched(Box::new(std::io::stdout()))
}

fn batched(sink: Box<dyn Write + Send>) -> (BatchedStdout, FlushGuard) {
    let shared = Arc::new(Shared {
        buffer: Mutex::new(Buffer {
            bytes: Vec::with_capacity(FLUSH_AT_BYTES),
            sink,
        }),
        stop: Mutex::new(false),
        wake: Condvar::new(),
    });
    let background = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("nova-log".into())
        .spawn(move || loop {
            let stopped = match background.stop.lock() {
                Ok(stop) => match background.wake.wait_timeout(stop, FLUSH_EVERY) {
                    Ok((stop, _)) => *stop,
                    Err(_) => true,
                },
                Err(_) => true,
            };
            background.flush();
            if stopped {
                return;
            }
        })
        .ok();
    (
        BatchedStdout(Arc::clone(&shared)),
        FlushGuard { shared, thread },
    )
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

/// One log event's writer (the subscriber writes each formatted line with one `write_all`).
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.buffer.lock() {
            buffer.bytes.extend_from_slice(bytes);
            if buffer.bytes.len() >= FLUSH_AT_BYTES {
                buffer.write_out();
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut written) = self.0.lock() {
                written.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn written(&self) -> Vec<u8> {
            self.0.lock().map(|w| w.clone()).unwrap_or_default()
        }
    }

    #[test]
    fn lines_reach_the_sink_in_order_and_the_guard_flushes_what_is_left() {
        let sink = Sink::default();
        let (writer, guard) = batched(Box::new(sink.clone()));
        {
            // The line writer borrows the writer: its scope ends before the guard goes.
            let mut line = writer.make_writer();
            line.write_all(b"first\n").expect("buffered");
            line.write_all(b"second\n").expect("buffered");
        }
        drop(guard);
        assert_eq!(sink.written(), b"first\nsecond\n");
    }

    #[test]
    fn the_background_thread_writes_buffered_lines_out_within_its_period() {
        let sink = Sink::default();
        let (writer, _guard) = batched(Box::new(sink.clone()));
        writer.make_writer().write_all(b"line\n").expect("buffered");
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 20;
        while sink.written().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(FLUSH_EVERY / 4);
        }
        assert_eq!(sink.written(), b"line\n");
    }

    #[test]
    fn a_full_buffer_is_written_out_by_the_thread_that_filled_it() {
        let sink = Sink::default();
        let (writer, _guard) = batched(Box::new(sink.clone()));
        let big = vec![b'x'; FLUSH_AT_BYTES];
        writer.make_writer().write_all(&big).expect("written");
        assert_eq!(sink.written().len(), FLUSH_AT_BYTES, "written at once");
    }
}
