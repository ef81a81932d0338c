//! A static file server on tokio-quiche's HTTP/3 driver, for bench/ only.
//!
//! tokio-quiche's own example server only generates bytes; the benchmark
//! needs every server to serve the same files from disk. Settings are
//! tokio-quiche's defaults except two, both for a fair comparison:
//! the UDP payload is pinned (it already defaults to 1350) and the stateless
//! Retry that tokio-quiche does on every new connection by default is off
//! (no other server in the benchmark sends one).
//!
//!   tq-fileserver --addr 127.0.0.1:4433 --cert cert.pem --key key.pem --root DIR
//!
//! Prints "tq-fileserver listening on ADDR" once the socket is bound.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::UdpSocket;
use tokio_quiche::buf_factory::BufFactory;
use tokio_quiche::http3::driver::{
    H3Event, IncomingH3Headers, OutboundFrame, OutboundFrameSender, ServerH3Event,
};
use tokio_quiche::http3::settings::Http3Settings;
use tokio_quiche::metrics::DefaultMetrics;
use tokio_quiche::quiche::h3::{Header, NameValue};
use tokio_quiche::settings::{CertificateKind, Hooks, QuicSettings, TlsCertificatePaths};
use tokio_quiche::{listen, ConnectionParams, ServerH3Driver};

const PAYLOAD: usize = 1350;
// The driver's own largest buffer: bigger body chunks would be split anyway.
const CHUNK: usize = BufFactory::MAX_BUF_SIZE;

struct Args {
    addr: String,
    cert: String,
    key: String,
    root: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut addr, mut cert, mut key, mut root) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = Some(val),
            "--cert" => cert = Some(val),
            "--key" => key = Some(val),
            "--root" => root = Some(PathBuf::from(val)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        cert: cert.ok_or("--cert is required")?,
        key: key.ok_or("--key is required")?,
        root: root.ok_or("--root is required")?,
    })
}

/// Maps a request path to a file under root; None for anything that could
/// leave it (`..`, absolute components) or is not a plain file.
fn resolve(root: &Path, path: &[u8]) -> Option<PathBuf> {
    let path = std::str::from_utf8(path).ok()?;
    let path = path.split(['?', '#']).next()?;
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel);
    full.is_file().then_some(full)
}

fn status_only(code: &str) -> Vec<Header> {
    vec![
        Header::new(b":status", code.as_bytes()),
        Header::new(b"content-length", b"0"),
    ]
}

/// Sends the file in driver-sized chunks; the last chunk carries FIN.
/// Reads are plain blocking reads: the benchmark's files are in the page
/// cache, and tokio::fs would hop to a blocking thread for every chunk.
async fn send_file(mut file: File, size: u64, send: &mut OutboundFrameSender) -> Option<()> {
    let mut left = size;
    loop {
        let n = left.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        file.read_exact(&mut buf).ok()?;
        left -= n as u64;
        let fin = left == 0;
        send.send(OutboundFrame::Body(Bytes::from(buf), fin)).await.ok()?;
        if fin {
            return Some(());
        }
    }
}

async fn handle_request(root: Arc<PathBuf>, req: IncomingH3Headers) {
    let IncomingH3Headers { headers, mut send, .. } = req;
    let mut method: &[u8] = b"";
    let mut path: &[u8] = b"";
    for h in &headers {
        match h.name() {
            b":method" => method = h.value(),
            b":path" => path = h.value(),
            _ => {}
        }
    }
    let head = method == b"HEAD";
    if method != b"GET" && !head {
        let _ = send.send(OutboundFrame::Headers(status_only("405"), None)).await;
        let _ = send.send(OutboundFrame::Body(Bytes::new(), true)).await;
        return;
    }
    let opened = resolve(&root, path).and_then(|p| {
        let f = File::open(p).ok()?;
        let size = f.metadata().ok()?.len();
        Some((f, size))
    });
    let Some((file, size)) = opened else {
        let _ = send.send(OutboundFrame::Headers(status_only("404"), None)).await;
        let _ = send.send(OutboundFrame::Body(Bytes::new(), true)).await;
        return;
    };
    let len = size.to_string();
    let hdrs = vec![
        Header::new(b":status", b"200"),
        Header::new(b"content-length", len.as_bytes()),
        Header::new(b"content-type", b"application/octet-stream"),
    ];
    if send.send(OutboundFrame::Headers(hdrs, None)).await.is_err() {
        return;
    }
    if head || size == 0 {
        let _ = send.send(OutboundFrame::Body(Bytes::new(), true)).await;
        return;
    }
    if send_file(file, size, &mut send).await.is_none() {
        let _ = send.send(OutboundFrame::PeerStreamError).await;
    }
}

/// One task per connection: each request gets a task of its own, as in
/// tokio-quiche's example server, so a large body never blocks the others.
async fn serve_connection(root: Arc<PathBuf>, mut controller: tokio_quiche::ServerH3Controller) {
    let events = controller.event_receiver_mut();
    while let Some(ev) = events.recv().await {
        match ev {
            ServerH3Event::Headers { incoming_headers, .. } => {
                tokio::spawn(handle_request(root.clone(), incoming_headers));
            }
            ServerH3Event::Core(H3Event::ConnectionShutdown(_))
            | ServerH3Event::Core(H3Event::ConnectionError(_)) => return,
            ServerH3Event::Core(_) => {}
        }
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tq-fileserver: {e}");
            std::process::exit(2);
        }
    };
    let root = Arc::new(args.root.clone());
    let socket = UdpSocket::bind(&args.addr).await.unwrap_or_else(|e| {
        eprintln!("tq-fileserver: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    let mut quic = QuicSettings::default();
    quic.max_send_udp_payload_size = PAYLOAD;
    quic.max_recv_udp_payload_size = PAYLOAD;
    quic.discover_path_mtu = false;
    // No stateless Retry: no other server in the benchmark sends one.
    quic.disable_client_ip_validation = true;
    let params = ConnectionParams::new_server(
        quic,
        TlsCertificatePaths {
            cert: &args.cert,
            private_key: &args.key,
            kind: CertificateKind::X509,
        },
        Hooks::default(),
    );
    let mut listeners = listen([socket], params, DefaultMetrics).unwrap_or_else(|e| {
        eprintln!("tq-fileserver: listen: {e}");
        std::process::exit(1);
    });
    println!("tq-fileserver listening on {}", args.addr);
    let accept = &mut listeners[0];
    while let Some(conn) = accept.next().await {
        let Ok(conn) = conn else { continue };
        let (driver, controller) = ServerH3Driver::new(Http3Settings::default());
        conn.start(driver);
        tokio::spawn(serve_connection(root.clone(), controller));
    }
}
