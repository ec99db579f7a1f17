//! The component's stdout and stderr: the runner's, except that a closed pipe is not an error.
//!
//! `djinit wait4db --help | head -1` closes the pipe after one line. Passed through, the guest's
//! next write fails, Rust's `print!` panics and the component traps: exit 70, "crashed". Here a
//! write to a closed pipe (EPIPE) succeeds and its bytes, and everything written after it, are
//! dropped: nobody reads them. The command carries on and exits as it would have (a migration
//! is not abandoned halfway because a log reader went away). Other write errors reach the guest.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// The runner's own output (`--help`, `--version`): written whole, or dropped when nobody reads
/// it (`djinit --help | head -1` exits 0).
pub fn print(text: &str) {
    let _ = Output::new(Which::Stdout)
        .write(text.as_bytes())
        .and_then(|()| io::stdout().flush());
}

/// Which of the runner's outputs.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    Stdout,
    Stderr,
}

/// stdout or stderr for [`wasmtime_wasi::WasiCtxBuilder::stdout`]/`stderr`.
#[derive(Clone)]
pub struct Output {
    which: Which,
    /// Set at the first EPIPE; shared by every stream of this output.
    closed: Arc<AtomicBool>,
}

impl Output {
    pub fn new(which: Which) -> Self {
        Output {
            which,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Write all of `buf` unless the reader is gone.
    fn write(&self, buf: &[u8]) -> io::Result<()> {
        self.quietly(|which| match which {
            Which::Stdout => io::stdout().write_all(buf),
            Which::Stderr => io::stderr().write_all(buf),
        })
    }

    fn flush(&self) -> io::Result<()> {
        self.quietly(|which| match which {
            Which::Stdout => io::stdout().flush(),
            Which::Stderr => io::stderr().flush(),
        })
    }

    fn quietly(&self, op: impl FnOnce(Which) -> io::Result<()>) -> io::Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match op(self.which) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed.store(true, Ordering::Relaxed);
                Ok(())
            }
            r => r,
        }
    }
}

impl IsTerminal for Output {
    fn is_terminal(&self) -> bool {
        match self.which {
            Which::Stdout => io::IsTerminal::is_terminal(&io::stdout()),
            Which::Stderr => io::IsTerminal::is_terminal(&io::stderr()),
        }
    }
}

impl StdoutStream for Output {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

fn stream_error(e: io::Error) -> StreamError {
    StreamError::LastOperationFailed(e.into())
}

impl OutputStream for Output {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Output::write(self, &bytes).map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Output::flush(self).map_err(stream_error)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Writes are synchronous; as much as wasmtime-wasi's own stdio accepts at once.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Output {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Output {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Output::write(&self, buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Output::flush(&self))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One line of the runner's own on stderr (`djinit: …`, or a JSON object with `--log-format
/// json`), with `format!` arguments: what the runner does to a child or the lock, next to the
/// command's own lines in the same format.
macro_rules! note {
    ($($arg:tt)*) => {
        djinit_cli::log::format::emit(
            "djinit",
            djinit_cli::log::Level::Info,
            "",
            &format!($($arg)*),
            &[],
        )
    };
}
pub(crate) use note;
