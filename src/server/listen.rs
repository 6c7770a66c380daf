//! The accept loop: HTTP/1.1 connections served by hyper with timeouts that
//! drop slow or idle clients, and a shutdown that finishes within a bound
//! whatever the clients do.
//!
//! `axum::serve` has no timeouts, so a client that sends half a header or half
//! a body held its connection forever, and its graceful shutdown waited for
//! every connection, forever for one that stopped reading. Here:
//! - **header timeout**: hyper's `header_read_timeout`. It runs whenever the
//!   connection waits for a request head, so it also ends an idle keep-alive
//!   connection that starts a request and never finishes it;
//! - **body timeout**: a request body must arrive whole within this time of
//!   its head (bodies are small JSON; a slow one is an attack or a dead peer);
//! - **idle timeout**: a connection with no request in flight and no bytes
//!   moved for this long is closed.
//!
//! None of them can cut off a response that takes long: an SSE stream, a
//! WebSocket (hyper hands the socket over at the upgrade) or a long
//! `POST /session/{id}/message` is a request in flight whose head and body
//! were read long ago.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Connection timeouts (`burrow serve` flags).
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Timeouts {
    /// Seconds a client may take to send a request's headers (also bounds an
    /// idle keep-alive connection that starts a request); 0 disables.
    #[arg(long = "header-timeout", env = "BURROW_HEADER_TIMEOUT", value_name = "SECS", default_value = "30", value_parser = secs)]
    pub header: Duration,
    /// Seconds a client may take to send a request's body once its headers
    /// arrived; 0 disables. Responses are never cut off (SSE, WebSockets, long prompts).
    #[arg(long = "body-timeout", env = "BURROW_BODY_TIMEOUT", value_name = "SECS", default_value = "60", value_parser = secs)]
    pub body: Duration,
    /// Seconds a keep-alive connection may sit with no request in flight; 0 disables.
    #[arg(long = "idle-timeout", env = "BURROW_IDLE_TIMEOUT", value_name = "SECS", default_value = "120", value_parser = secs)]
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { header: Duration::from_secs(30), body: Duration::from_secs(60), idle: Duration::from_secs(120) }
    }
}

fn secs(s: &str) -> Result<Duration, String> {
    let n: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(n).map_err(|_| format!("{s:?} is not a number of seconds"))
}

fn enabled(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// How long connections get to finish after a shutdown signal; then the
/// server returns and drops them (an SSE client that stopped reading never
/// would). With the bounded wait for running commands this keeps the whole
/// shutdown under five seconds.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// connections finish for at most [`SHUTDOWN_GRACE`].
pub async fn serve(listener: TcpListener, app: Router, timeouts: Timeouts, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(enabled(timeouts.header));
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let kill = Disconnect(CancellationToken::new());
        let io = TokioIo::new(Tracked { stream, activity: activity.clone() });
        let service = hyper::service::service_fn({
            let (app, activity, kill) = (app.clone(), activity.clone(), kill.clone());
            move |mut req: hyper::Request<Incoming>| {
                let guard = activity.enter();
                req.extensions_mut().insert(kill.clone());
                let req = with_body_timeout(req, enabled(timeouts.body));
                let app = app.clone();
                async move {
                    let res = app.oneshot(req).await.unwrap_or_else(|e: Infallible| match e {});
                    // The request counts as in flight until its response body is gone.
                    Ok::<_, Infallible>(res.map(|b| {
                        Body::new(b.map_err(move |e| {
                            let _in_flight = &guard;
                            e
                        }))
                    }))
                }
            }
        });
        let conn = http.serve_connection(io, service).with_upgrades();
        let (stop, idle) = (stop.clone(), enabled(timeouts.idle));
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = activity.idle_for(idle) => {
                    tracing::debug!("closing an idle connection");
                    return;
                }
                // A handler gave up on this client (an event stream it fell behind on).
                _ = kill.0.cancelled() => return,
                _ = stop.cancelled() => {}
            }
            // Finish the request in flight, then close; SHUTDOWN_GRACE bounds the wait.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    stop.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
        tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown began; dropping them");
    }
}

/// In every request's extensions: drops the request's connection at once,
/// without waiting to flush what the client has not read.
#[derive(Clone, Debug)]
pub struct Disconnect(CancellationToken);

impl Disconnect {
    pub fn now(&self) {
        self.0.cancel();
    }
}

/// Bytes moved and requests in flight on one connection.
#[derive(Default)]
struct Activity {
    /// Milliseconds since [`epoch`] of the last read or write.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn touch(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }

    fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Completes once the connection has been idle for `limit`: no request in
    /// flight and nothing read or written. Never, when `limit` is `None`.
    async fn idle_for(&self, limit: Option<Duration>) {
        let Some(limit) = limit else { return std::future::pending().await };
        self.touch();
        loop {
            let since = Duration::from_millis(now_ms().saturating_sub(self.last.load(Ordering::Relaxed)));
            if since >= limit && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep(limit.saturating_sub(since).max(Duration::from_millis(100))).await;
        }
    }
}

/// The connection's socket, noting when bytes move.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The request with a body that fails once `limit` has passed since now
/// without it arriving whole. A body that is already complete (a GET) is kept as is.
fn with_body_timeout(req: hyper::Request<Incoming>, limit: Option<Duration>) -> Request {
    match limit {
        Some(limit) if !req.body().is_end_stream() => req.map(|inner| Body::new(TimedBody { inner, deadline: Box::pin(tokio::time::sleep(limit)), limit })),
        _ => req.map(Body::new),
    }
}

struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    let limit = self.limit;
                    return Poll::Ready(Some(Err(format!("the request body did not arrive within {limit:?}").into())));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
