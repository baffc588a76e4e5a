//! Records to an MQTT broker, off the caller's thread.
//!
//! The caller only appends to a bounded queue. A manager thread hands records to `rumqttc` a
//! window at a time and takes them off the queue only once they are delivered (QoS 1: the
//! broker acknowledged them; QoS 0: they were written to the connection). A poller thread runs
//! rumqttc's event loop, which reconnects after each error; it waits between attempts with a
//! back-off that doubles up to the configured maximum. When the connection drops, what was not
//! delivered goes back to the front of the queue and is sent again once connected (at QoS 1 a
//! record can then arrive twice, never not at all). Records are dropped only when the queue is
//! full or the output closes with records undelivered, and each is counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, ConnectionError, Event, MqttOptions, Outgoing, Packet};

use super::{Notice, PublishError, PublishStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QoS {
    /// Sent once, not acknowledged: what is in a connection when it breaks may be lost.
    AtMostOnce,
    /// Acknowledged by the broker; sent again until it is.
    AtLeastOnce,
}

#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// `host:port`.
    pub address: String,
    pub topic: String,
    pub client_id: String,
    pub qos: QoS,
    /// Attempts at the first connection before giving up with an error.
    pub max_connect_attempts: u32,
    /// The longest wait between two reconnection attempts.
    pub max_reconnect_interval: Duration,
    /// Records that may wait for the broker; beyond, the oldest are dropped.
    pub max_queued: usize,
}

/// Records given to rumqttc at once.
const WINDOW: usize = 64;
/// How often the manager looks at the queue when nothing else happens.
const TICK: Duration = Duration::from_millis(10);

struct Inner {
    queue: VecDeque<String>,
    /// Records given to rumqttc and not yet delivered (the manager's flights).
    inflight: usize,
    stats: PublishStats,
    notices: Vec<Notice>,
    /// Set by `finish`: deliver what is queued until then, then stop.
    deadline: Option<Instant>,
    /// The first connection failed for good: records are dropped as they come.
    failed: bool,
}

struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Every record handed over is published, dropped or waiting (queued or in flight), at
    /// every moment: each change of the queue or the flights goes through here under the lock.
    fn settle(&mut self, inflight: usize) {
        self.inflight = inflight;
        self.stats.queued = (self.queue.len() + inflight) as u64;
    }
}

/// Waits for an MQTT output's records to be delivered (see [`Output::drain`](super::Output::drain)).
#[derive(Clone)]
pub struct Drain {
    shared: Arc<Shared>,
}

impl Drain {
    /// Waits until nothing is queued or in flight, the output failed, or `wait` has passed;
    /// returns the counters then.
    pub fn wait(&self, wait: Duration) -> PublishStats {
        let until = Instant::now() + wait;
        loop {
            let (stats, failed) = {
                let inner = self.shared.lock();
                (inner.stats, inner.failed)
            };
            if stats.queued == 0 || failed || Instant::now() >= until {
                return stats;
            }
            std::thread::sleep(TICK);
        }
    }
}

pub struct MqttOutput {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    max_queued: usize,
}

/// The longest string MQTT can carry (a two-byte length).
const MAX_MQTT_STRING: usize = 65_535;

fn setting(property: &'static str, value: &str, reason: impl Into<String>) -> PublishError {
    PublishError::Setting {
        property,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `host:port` as rumqttc wants it: a host name or IP address (IPv6 in brackets) and a port
/// from 1 to 65535.
pub fn parse_address(address: &str) -> Result<(String, u16), PublishError> {
    let bad = |why: &str| {
        setting(
            "address",
            address,
            format!("{why}; give host:port, e.g. localhost:1883"),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port = match port.parse::<u32>() {
        Ok(p @ 1..=65535) => p as u16,
        Ok(_) => return Err(bad("the port is outside 1-65535")),
        Err(_) => return Err(bad("the port is not a number")),
    };
    let host = match host.strip_prefix('[') {
        Some(v6) => {
            let v6 = v6
                .strip_suffix(']')
                .ok_or_else(|| bad("an IPv6 address lacks its closing ]"))?;
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address inside [ ]"))?;
            v6
        }
        None => host,
    };
    let label_ok =
        |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.parse::<std::net::Ipv6Addr>().is_err() && (host.len() > 253 || !host.split('.').all(label_ok)) {
        return Err(bad("the host is not a host name or IP address"));
    }
    Ok((host.to_string(), port))
}

/// A topic one may publish to (MQTT 3.1.1 section 4.7): not empty, no wildcards (`+`, `#`,
/// which only subscriptions may use), no NUL, at most 65535 bytes.
pub fn check_topic(topic: &str) -> Result<(), PublishError> {
    let bad = |why: &str| setting("topic", topic, why.to_string());
    if topic.is_empty() {
        return Err(bad("a topic to publish to cannot be empty"));
    }
    if topic.contains(['+', '#']) {
        return Err(bad(
            "a topic to publish to cannot contain the wildcards + or # (only subscriptions may); name one topic, e.g. store/door",
        ));
    }
    if topic.contains('\0') {
        return Err(bad("a topic cannot contain a NUL character"));
    }
    if topic.len() > MAX_MQTT_STRING {
        return Err(bad("a topic is at most 65535 bytes long"));
    }
    Ok(())
}

/// A client id MQTT can carry: not empty (a broker then makes one up, or refuses), no NUL or
/// control characters, at most 65535 bytes.
pub fn check_client_id(id: &str) -> Result<(), PublishError> {
    let bad = |why: &str| setting("client-id", id, why.to_string());
    if id.is_empty() {
        return Err(bad("the client id cannot be empty"));
    }
    if id.chars().any(char::is_control) {
        return Err(bad("the client id cannot contain NUL or control characters"));
    }
    if id.len() > MAX_MQTT_STRING {
        return Err(bad("a client id is at most 65535 bytes long"));
    }
    Ok(())
}

impl MqttOutput {
    /// Starts the output; connecting happens on its own thread (a broker that cannot be reached
    /// is reported as a [`Notice::Failed`]).
    pub fn start(config: MqttConfig) -> Result<Self, PublishError> {
        let (host, port) = parse_address(&config.address)?;
        check_topic(&config.topic)?;
        check_client_id(&config.client_id)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                inflight: 0,
                stats: PublishStats::default(),
                notices: Vec::new(),
                deadline: None,
                failed: false,
            }),
        });
        let max_queued = config.max_queued.max(1);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("faceemotion-mqtt".into())
            .spawn(move || Manager::new(s, config, host, port).run())
            .map_err(|e| PublishError::Connect {
                address: String::new(),
                port: 0,
                attempts: 0,
                reason: e.to_string(),
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
            max_queued,
        })
    }

    /// Appends a record to the queue; never waits.
    pub fn send(&mut self, record: String) {
        let mut inner = self.shared.lock();
        inner.stats.sent += 1;
        if inner.failed {
            inner.stats.dropped += 1;
            return;
        }
        if inner.queue.len() >= self.max_queued {
            inner.queue.pop_front();
            inner.stats.dropped += 1;
            // One notice per run of drops: the count goes on rising in the stats.
            if !matches!(inner.notices.last(), Some(Notice::Dropped(_))) {
                inner.notices.push(Notice::Dropped(1));
            } else if let Some(Notice::Dropped(n)) = inner.notices.last_mut() {
                *n += 1;
            }
        }
        inner.queue.push_back(record);
        let inflight = inner.inflight;
        inner.settle(inflight);
    }

    pub fn stats(&self) -> PublishStats {
        self.shared.lock().stats
    }

    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.shared.lock().notices)
    }

    pub fn drain(&self) -> Drain {
        Drain {
            shared: self.shared.clone(),
        }
    }

    /// Delivers what is queued for at most `wait`, then stops; the rest counts as dropped.
    pub fn finish(&mut self, wait: Duration) -> PublishStats {
        self.shared.lock().deadline = Some(Instant::now() + wait);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for MqttOutput {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish(Duration::ZERO);
        }
    }
}

/// A record given to rumqttc, and its packet id once rumqttc has sent it.
struct Flight {
    record: String,
    pkid: Option<u16>,
}

struct Manager {
    shared: Arc<Shared>,
    config: MqttConfig,
    host: String,
    port: u16,
}

impl Manager {
    fn new(shared: Arc<Shared>, config: MqttConfig, host: String, port: u16) -> Self {
        Self {
            shared,
            config,
            host,
            port,
        }
    }

    fn run(self) {
        let mut options = MqttOptions::new(&self.config.client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(10));
        // A fresh session each time: what the broker did not acknowledge is ours to send again,
        // so rumqttc must not replay it too.
        options.set_clean_session(true);
        options.set_max_packet_size(1 << 22, 1 << 22);
        options.set_inflight(WINDOW as u16 * 2);
        let (client, mut connection) = Client::new(options, WINDOW * 2);
        let (tx, events) = mpsc::channel::<Result<Event, ConnectionError>>();
        let backoff = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (backoff, stop) = (backoff.clone(), stop.clone());
            std::thread::Builder::new()
                .name("faceemotion-mqtt-io".into())
                .spawn(move || {
                    while let Ok(event) = connection.recv() {
                        let failed = event.is_err();
                        if tx.send(event).is_err() {
                            break;
                        }
                        if failed {
                            // Wait before the next attempt, in steps, so that closing is quick.
                            let until = Instant::now() + Duration::from_millis(backoff.load(Ordering::SeqCst));
                            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                })
        };
        let qos = match self.config.qos {
            QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
            QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        };
        let mut flights: VecDeque<Flight> = VecDeque::new();
        let (mut connected, mut ever_connected, mut attempts) = (false, false, 0u32);
        let mut wait = Duration::from_secs(1);
        loop {
            {
                let inner = self.shared.lock();
                if let Some(deadline) = inner.deadline {
                    if (inner.queue.is_empty() && flights.is_empty()) || Instant::now() >= deadline || inner.failed {
                        break;
                    }
                }
            }
            if connected {
                let mut inner = self.shared.lock();
                while flights.len() < WINDOW {
                    let Some(record) = inner.queue.pop_front() else { break };
                    match client.try_publish(&self.config.topic, qos, false, record.clone().into_bytes()) {
                        Ok(()) => flights.push_back(Flight { record, pkid: None }),
                        Err(_) => {
                            inner.queue.push_front(record);
                            break;
                        }
                    }
                }
                inner.settle(flights.len());
            }
            let event = match events.recv_timeout(TICK) {
                Ok(e) => e,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    attempts = 0;
                    wait = Duration::from_secs(1);
                    let mut inner = self.shared.lock();
                    inner.stats.connected = true;
                    if ever_connected {
                        inner.stats.reconnects += 1;
                        inner.notices.push(Notice::Reconnected);
                    }
                    ever_connected = true;
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => match self.config.qos {
                    QoS::AtMostOnce => {
                        if flights.pop_front().is_some() {
                            let mut inner = self.shared.lock();
                            inner.stats.published += 1;
                            inner.settle(flights.len());
                        }
                    }
                    QoS::AtLeastOnce => {
                        if let Some(f) = flights.iter_mut().find(|f| f.pkid.is_none()) {
                            f.pkid = Some(pkid);
                        }
                    }
                },
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(i) = flights.iter().position(|f| f.pkid == Some(ack.pkid)) {
                        flights.remove(i);
                        let mut inner = self.shared.lock();
                        inner.stats.published += 1;
                        inner.settle(flights.len());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let mut inner = self.shared.lock();
                    if connected {
                        inner.notices.push(Notice::Disconnected(e.to_string()));
                    }
                    connected = false;
                    inner.stats.connected = false;
                    // Not delivered: back to the front of the queue, in order.
                    while let Some(f) = flights.pop_back() {
                        inner.queue.push_front(f.record);
                    }
                    while inner.queue.len() > self.config.max_queued.max(1) {
                        inner.queue.pop_front();
                        inner.stats.dropped += 1;
                    }
                    inner.settle(0);
                    attempts += 1;
                    if !ever_connected && attempts >= self.config.max_connect_attempts.max(1) {
                        inner.failed = true;
                        inner.stats.dropped += inner.queue.len() as u64;
                        inner.queue.clear();
                        inner.settle(0);
                        inner.notices.push(Notice::Failed(PublishError::Connect {
                            address: self.config.address.clone(),
                            port: self.port,
                            attempts,
                            reason: e.to_string(),
                        }));
                        break;
                    }
                    backoff.store(wait.as_millis() as u64, Ordering::SeqCst);
                    wait = (wait * 2).min(self.config.max_reconnect_interval.max(Duration::from_secs(1)));
                }
            }
        }
        {
            let mut inner = self.shared.lock();
            let left = inner.queue.len() + flights.len();
            inner.stats.dropped += left as u64;
            inner.queue.clear();
            inner.settle(0);
            inner.stats.connected = false;
        }
        stop.store(true, Ordering::SeqCst);
        let _ = client.try_disconnect();
        drop(client);
        drop(events);
        if let Ok(p) = poller {
            let _ = p.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_address("localhost:1883").unwrap(), ("localhost".into(), 1883));
        assert_eq!(parse_address("[::1]:1884").unwrap(), ("::1".into(), 1884));
        assert_eq!(parse_address("10.0.0.5:1").unwrap(), ("10.0.0.5".into(), 1));
        assert_eq!(parse_address("broker.shop-1.lan:8883").unwrap().0, "broker.shop-1.lan");
        for bad in [
            "localhost",
            ":1883",
            "host:port",
            "host:0",
            "host:65536",
            "host:-1",
            "[::1:1883",
            "[zz]:1883",
            "bad host:1883",
            "a..b:1883",
        ] {
            let e = parse_address(bad).unwrap_err().to_string();
            assert!(e.starts_with("address="), "{bad}: {e}");
        }
    }

    #[test]
    fn topics_and_client_ids_mqtt_can_carry() {
        assert!(check_topic("store/door").is_ok() && check_topic("/").is_ok());
        for bad in ["", "store/#", "store/+/door", "a\0b"] {
            let e = check_topic(bad).unwrap_err().to_string();
            assert!(e.starts_with("topic="), "{bad:?}: {e}");
        }
        assert!(check_topic(&"a".repeat(65_536)).is_err());
        assert!(check_topic(&"a".repeat(65_535)).is_ok());
        assert!(check_client_id("faceemotion-12-publish0").is_ok());
        for bad in ["", "a\0b", "a\nb"] {
            assert!(
                check_client_id(bad).unwrap_err().to_string().starts_with("client-id="),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_broker_fails_after_its_attempts_and_counts_every_record() {
        // A port nothing listens on: bound, then closed again.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut out = MqttOutput::start(MqttConfig {
            address: format!("127.0.0.1:{port}"),
            topic: "t".into(),
            client_id: "test".into(),
            qos: QoS::AtLeastOnce,
            max_connect_attempts: 2,
            max_reconnect_interval: Duration::from_secs(1),
            max_queued: 3,
        })
        .unwrap();
        for i in 0..5 {
            out.send(format!("{i}"));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut notices = Vec::new();
        while !notices.iter().any(|n| matches!(n, Notice::Failed(_))) && Instant::now() < deadline {
            notices.extend(out.take_notices());
            std::thread::sleep(Duration::from_millis(20));
        }
        let failed = notices.iter().find_map(|n| match n {
            Notice::Failed(e) => Some(e.to_string()),
            _ => None,
        });
        let failed = failed.expect("a failure notice");
        assert!(
            failed.contains(&format!("127.0.0.1:{port}")) && failed.contains("2 attempt"),
            "{failed}"
        );
        out.send("late".into());
        let s = out.finish(Duration::ZERO);
        assert_eq!((s.sent, s.published, s.dropped), (6, 0, 6), "{s:?}");
    }
}
