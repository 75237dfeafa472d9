//! Kept-alive HTTP/1.1 connections to external hosts, shared by every
//! instance of the application: a model call reuses a warm connection (and
//! skips the TLS handshake) instead of connecting anew each time. Each
//! request brings its own headers and wasi:http refuses the framing headers
//! a guest could desynchronise a connection with (`transfer-encoding`,
//! `connection`, a `content-length` other than the bytes written), so
//! components and tenants share connections by destination. Authentication
//! bound to a connection (NTLM, Negotiate) is not supported.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use wasmtime_wasi_http::{Error, WasiBody};

use crate::metrics::Metrics;

/// Idle connections kept per host.
const MAX_IDLE_PER_HOST: usize = 64;
/// Idle connections kept in all.
const MAX_IDLE: usize = 256;
/// How long an idle connection is kept: less than the 5 s after which
/// common servers (uvicorn, so vLLM; Node) close theirs, so a request
/// rarely meets a connection the server is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Where a connection goes: TLS or not, and `host:port`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tls: bool,
    authority: String,
}

/// A connection: the handle to send on and its I/O task.
struct Conn {
    sender: SendRequest<WasiBody>,
    task: AbortHandle,
}

/// A connection in use. Dropped before its exchange finished (the guest
/// went away mid-request or mid-response), it is torn down, so an
/// abandoned request never completes on its own.
struct InUse(Option<Conn>);

impl InUse {
    fn sender(&mut self) -> &mut SendRequest<WasiBody> {
        &mut self.0.as_mut().expect("in use").sender
    }

    /// The connection, no longer torn down on drop.
    fn finish(mut self) -> Conn {
        self.0.take().expect("in use")
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(conn) = &self.0 {
            conn.task.abort();
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Idle {
    fn fresh(&self) -> bool {
        self.since.elapsed() < IDLE_TIMEOUT && !self.conn.sender.is_closed()
    }
}

/// The time limits of one request.
#[derive(Clone, Copy)]
pub struct Timeouts {
    /// TCP connect, TLS and HTTP handshakes together.
    pub connect: Duration,
    /// From sending the request to the response's head.
    pub first_byte: Duration,
    /// Between two chunks of the response's body.
    pub between_bytes: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The application's idle connections, by destination.
pub struct ConnectionPool {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    /// Built once: the root store is large.
    tls: Arc<rustls::ClientConfig>,
    metrics: Arc<Metrics>,
}

impl ConnectionPool {
    /// An empty pool reporting to `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            idle: Mutex::default(),
            tls: Arc::new(tls),
            metrics,
        }
    }

    /// Sends `request` (absolute URI) on an idle connection to its host, or
    /// on a new one; the connection returns to the pool once the response's
    /// body has been read to its end. Errors are the ones wasi:http reports
    /// (refused, DNS, TLS, timeouts), as with a connection of its own.
    pub async fn send(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        timeouts: Timeouts,
    ) -> Result<http::Response<WasiBody>, Error> {
        let uri = request.uri();
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let authority = match authority.port() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:{}", if tls { 443 } else { 80 }),
        };
        let key = Key { tls, authority };
        // Origin form on the wire: scheme and authority are for proxies.
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

        if let Some(mut conn) = self.checkout(&key) {
            let sent = conn.sender().try_send_request(request);
            match tokio::time::timeout(timeouts.first_byte, sent).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(response)) => {
                    self.metrics.outbound_request("reused");
                    return Ok(self.body(response, key, conn, timeouts));
                }
                Ok(Err(mut e)) => match e.take_message() {
                    // The server closed the idle connection before the
                    // request went out: send it on a new one.
                    Some(unsent) => request = unsent,
                    // It closed it while the request went out: the request
                    // may have arrived, so it is not sent again here.
                    None => {
                        let e = e.into_error();
                        return Err(if e.is_parse() || e.is_user() {
                            e.into()
                        } else {
                            Error::ConnectionTerminated
                        });
                    }
                },
            }
        }
        let mut conn = tokio::time::timeout(timeouts.connect, self.connect(&key))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        self.metrics.outbound_request("new");
        let response =
            tokio::time::timeout(timeouts.first_byte, conn.sender().send_request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)??;
        Ok(self.body(response, key, conn, timeouts))
    }

    /// A live idle connection to `key`.
    fn checkout(&self, key: &Key) -> Option<InUse> {
        let mut idle = self.idle.lock().expect("pool lock");
        sweep(&mut idle);
        let entry = idle.get_mut(key)?.pop()?;
        Some(InUse(Some(entry.conn)))
    }

    async fn connect(&self, key: &Key) -> Result<InUse, Error> {
        let tcp = TcpStream::connect(&key.authority)
            .await
            .map_err(Error::Connect)?;
        // Requests and SSE chunks are small writes: send them at once.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if key.tls {
            let name = server_name(&key.authority)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            Box::new(connector.connect(name, tcp).await.map_err(Error::Tls)?)
        } else {
            Box::new(tcp)
        };
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "outbound connection ended");
            }
        })
        .abort_handle();
        Ok(InUse(Some(Conn { sender, task })))
    }

    /// The response with a body that enforces the gap between chunks and
    /// gives the connection back at its end (at once for a body that is
    /// empty from the start).
    fn body(
        self: Arc<Self>,
        response: http::Response<Incoming>,
        key: Key,
        conn: InUse,
        timeouts: Timeouts,
    ) -> http::Response<WasiBody> {
        use http_body_util::BodyExt;
        response.map(|incoming| {
            let mut give_back = Some((self, key, conn));
            if incoming.is_end_stream() {
                hand_back(&mut give_back);
            }
            PooledBody {
                incoming,
                between_bytes: timeouts.between_bytes,
                deadline: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
                give_back,
            }
            .boxed_unsync()
        })
    }

    /// Keeps `conn` once it is ready for another request (its exchange has
    /// ended both ways); a connection that never gets ready is closed.
    fn give_back(self: Arc<Self>, key: Key, conn: InUse) {
        tokio::spawn(async move {
            let mut conn = conn;
            let ready = tokio::time::timeout(IDLE_TIMEOUT, conn.sender().ready()).await;
            if !matches!(ready, Ok(Ok(()))) {
                return;
            }
            let conn = conn.finish();
            let mut idle = self.idle.lock().expect("pool lock");
            sweep(&mut idle);
            let total: usize = idle.values().map(Vec::len).sum();
            let list = idle.entry(key).or_default();
            if list.len() < MAX_IDLE_PER_HOST && total < MAX_IDLE {
                list.push(Idle {
                    conn,
                    since: Instant::now(),
                });
            }
        });
    }
}

/// Drops expired and closed idle connections, and hosts left with none.
fn sweep(idle: &mut HashMap<Key, Vec<Idle>>) {
    idle.retain(|_, list| {
        list.retain(Idle::fresh);
        !list.is_empty()
    });
}

/// The name TLS verifies: an IP literal, or the host name without its port.
fn server_name(authority: &str) -> Result<ServerName<'static>, Error> {
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(addr.ip()));
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    ServerName::try_from(host.to_string()).map_err(Error::InvalidDnsNameError)
}

type GiveBack = (Arc<ConnectionPool>, Key, InUse);

/// Hands the connection back to its pool.
fn hand_back(give_back: &mut Option<GiveBack>) {
    if let Some((pool, key, conn)) = give_back.take() {
        pool.give_back(key, conn);
    }
}

/// A response body from a pooled connection.
struct PooledBody {
    incoming: Incoming,
    between_bytes: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Until the body has been read to its end; dropped earlier (an error,
    /// a timeout, a body the guest abandoned), the connection is closed.
    give_back: Option<GiveBack>,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                hand_back(&mut self.give_back);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken connection is not reused.
                self.give_back = None;
                Poll::Ready(Some(Err(if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    e.into()
                })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.deadline.as_mut().reset(next);
                if self.incoming.is_end_stream() {
                    hand_back(&mut self.give_back);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                self.give_back = None;
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
