//! The raft transport between brokers: one TCP connection per broker pair
//! carries every group's AppendEntries, Vote, PreVote, snapshot and
//! TransferLeader RPCs, each message tagged with its group id and a request
//! id, many messages per envelope frame.
//!
//! - [`frame`]: the wire format.
//! - [`peer`]: one remote node: its connection, queue, coalescing, counters.
//! - [`server`]: the listener and the fan-out of inbound requests.
//! - [`network`]: openraft's `RaftNetworkFactory`/`RaftNetworkV2` over peers.
//! - [`liveness`]: telling a stalled connection (a link that drops packets
//!   without a reset) from a slow one, so that it is replaced in seconds.
//! - [`stream`]: plain TCP or TLS under a connection.
//!
//! One connection, both ways: the node with the lower id dials, the other
//! accepts, and both send requests and answers on it. So a pair never holds
//! two connections that could race, and a heartbeat and the answer to the
//! other side's heartbeat can share an envelope.
//!
//! Ownership: the [`crate::registry::RaftNode`] owns the [`Transport`];
//! it is a cheap handle (clone = `Arc`). It spawns the listener and one
//! manager task per peer; [`Transport::shutdown`] ends them.

pub mod frame;
pub mod liveness;
pub mod network;
pub mod peer;
pub mod server;
pub mod stream;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::RaftConfig;
pub use network::NetworkFactory;
pub use peer::{Peer, PeerStats};
pub use server::Dispatch;
pub use stream::TransportTls;

/// See the module doc.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    local: u64,
    addr: SocketAddr,
    /// Where peers reach this node (given, or the bound address).
    advertised: Arc<str>,
    config: Arc<RaftConfig>,
    dispatch: Arc<dyn Dispatch>,
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
    /// Addresses the broker learned from cluster metadata; they win over the
    /// (possibly older) addresses in a group's membership.
    book: Mutex<HashMap<u64, String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    tls: Option<TransportTls>,
}

impl Transport {
    /// Binds the listener and starts accepting. `dispatch` finds the group an
    /// inbound request names; `advertised` is where peers reach this node
    /// (the bound address if `None`); with `tls` every connection is TLS.
    pub async fn bind(
        local: u64,
        listen: SocketAddr,
        advertised: Option<String>,
        config: Arc<RaftConfig>,
        dispatch: Arc<dyn Dispatch>,
        tls: Option<TransportTls>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let advertised = advertised.unwrap_or_else(|| addr.to_string()).into();
        let inner = Inner {
            local,
            addr,
            advertised,
            config,
            dispatch,
            peers: Mutex::default(),
            book: Mutex::default(),
            tasks: Mutex::default(),
            tls,
        };
        let transport = Self { inner: Arc::new(inner) };
        let task = tokio::spawn(server::listen(listener, transport.clone()));
        transport.inner.tasks.lock().expect("tasks lock").push(task);
        Ok(transport)
    }

    pub fn local_id(&self) -> u64 {
        self.inner.local
    }

    /// The address the listener is bound to (a port of 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Where peers reach this node.
    pub fn advertised(&self) -> &str {
        &self.inner.advertised
    }

    pub fn config(&self) -> &Arc<RaftConfig> {
        &self.inner.config
    }

    pub(crate) fn tls(&self) -> Option<&TransportTls> {
        self.inner.tls.as_ref()
    }

    /// The peer for `remote`, created (with its manager task) on first use.
    /// `addr` is where it listens; only the dialling side needs it.
    pub fn peer(&self, remote: u64, addr: Option<&str>) -> Arc<Peer> {
        let booked = self.inner.book.lock().expect("book lock").get(&remote).cloned();
        let addr = booked.as_deref().or(addr);
        let mut peers = self.inner.peers.lock().expect("peers lock");
        let peer = peers.entry(remote).or_insert_with(|| {
            let (peer, accepted) = Peer::new(
                self.inner.local,
                remote,
                Arc::clone(&self.inner.advertised),
                Arc::clone(&self.inner.config),
                self.inner.tls.clone(),
            );
            let dispatch = Arc::clone(&self.inner.dispatch);
            let task = if peer.dials() {
                tokio::spawn(Arc::clone(&peer).dial_loop(dispatch))
            } else {
                tokio::spawn(Arc::clone(&peer).accept_loop(accepted, dispatch))
            };
            self.inner.tasks.lock().expect("tasks lock").push(task);
            peer
        });
        if let Some(addr) = addr {
            peer.set_addr(addr);
        }
        Arc::clone(peer)
    }

    /// Records where node `remote` listens now (it registered anew, perhaps
    /// on another port); used for every later dial to it.
    pub fn set_address(&self, remote: u64, addr: &str) {
        let changed = self.inner.book.lock().expect("book lock").insert(remote, addr.to_string()).as_deref() != Some(addr);
        if changed && let Some(p) = self.inner.peers.lock().expect("peers lock").get(&remote) {
            p.set_addr(addr);
        }
    }

    /// Counters of every peer, by node id.
    pub fn stats(&self) -> BTreeMap<u64, PeerStats> {
        self.inner.peers.lock().expect("peers lock").iter().map(|(id, p)| (*id, p.stats())).collect()
    }

    /// Stops the listener and every connection; in-flight calls fail as unreachable.
    pub fn shutdown(&self) {
        for t in self.inner.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
    }
}
