//! Real services for the tests, on free loopback ports: Debian's mosquitto, and GStreamer's RTSP
//! server (the `rtsp_test_server` example). Each is stopped when dropped.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Tries a service on a free port, on another one when it could not have it: a port found free
/// may be taken by another process before the service binds it.
fn on_a_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Option<T>) -> T {
    for _ in 0..5 {
        if let Some(service) = start(free_port()) {
            return service;
        }
    }
    panic!("{what} could not listen on any of 5 free loopback ports");
}

fn terminate(child: &mut Child) {
    // SIGTERM: mosquitto saves its persistent sessions on the way out.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A mosquitto broker with persistence, so that a subscriber's session and its queued messages
/// survive a restart of the broker.
pub struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start() -> Self {
        on_a_free_port("mosquitto", |port| {
            let dir = std::env::temp_dir().join(format!("faceemotion-mosquitto-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            // Started as root, mosquitto drops to its own user: it must still write its database.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            std::fs::write(
                dir.join("mosquitto.conf"),
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
                     max_queued_messages 0\nmax_inflight_messages 0\nlog_dest stderr\n",
                    dir.display()
                ),
            )
            .unwrap();
            let mut m = Self { port, dir, child: None };
            // Dropped when it could not listen: its folder goes with it.
            m.try_resume().then_some(m)
        })
    }

    fn exe() -> &'static str {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .expect("mosquitto is missing: run scripts/setup.sh --test (Debian mosquitto)")
    }

    /// Starts the broker (again) on its port.
    pub fn resume(&mut self) {
        assert!(
            self.try_resume(),
            "mosquitto could not listen on port {} again",
            self.port
        );
    }

    fn try_resume(&mut self) -> bool {
        assert!(self.child.is_none());
        let mut child = Command::new(Self::exe())
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts");
        // Its log says `running` once its listener is open, and `Address already in use` before
        // it exits when another process has the port (whose connections a port check would
        // take for the broker's). The log is read to its end, so that the broker never blocks
        // on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::io::BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut told = false;
            for line in log.lines().map_while(Result::ok) {
                if !told && line.contains(" running") {
                    told = true;
                    let _ = tx.send(true);
                }
            }
            let _ = tx.send(false);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(true) => {
                self.child = Some(child);
                true
            }
            Ok(false) => {
                let _ = child.wait();
                false
            }
            Err(_) => {
                terminate(&mut child);
                panic!("mosquitto did not say it was running on port {} in 20 s", self.port);
            }
        }
    }

    /// Stops the broker, as an administrator would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An MQTT subscriber that keeps its session (and so gets what was queued for it while it or
/// the broker was away); collects every payload of `topic` (and below) on a thread of its own.
pub struct Subscriber {
    pub received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    pub fn start(port: u16, topic: &str) -> Self {
        use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
        let mut opts = MqttOptions::new(format!("faceemotion-test-sub-{port}"), "127.0.0.1", port);
        opts.set_clean_session(false);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(1 << 22, 1 << 22);
        let (client, mut connection) = Client::new(opts, 100);
        client.subscribe(format!("{topic}/#"), QoS::AtLeastOnce).unwrap();
        client.subscribe(topic, QoS::AtLeastOnce).unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let subscribed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sub = subscribed.clone();
        let thread = std::thread::spawn(move || {
            let _client = client;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match connection.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        r.lock().unwrap().push(String::from_utf8_lossy(&p.payload).into_owned());
                    }
                    Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => sub.store(true, std::sync::atomic::Ordering::SeqCst),
                    Ok(Ok(_)) => {}
                    // The broker is away: keep polling, which reconnects.
                    Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                    Err(_) => {}
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the subscriber could not subscribe");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until at least `n` payloads came (or the time is up) and returns them.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// GStreamer's RTSP server on loopback, streaming a live H.264 picture of a face at
/// `rtsp://127.0.0.1:PORT/cam` (the `rtsp_test_server` example, built by `cargo test`).
pub struct RtspServer {
    pub port: u16,
    /// What the camera sends besides the default (`--h265`, `--audio pcma`...).
    options: Vec<String>,
    child: Option<Child>,
}

impl RtspServer {
    fn exe() -> PathBuf {
        let exe = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/rtsp_test_server");
        assert!(exe.is_file(), "{} is missing: cargo test builds it", exe.display());
        exe
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A camera sending what the example's options say: `--h265`, `--audio pcma|aac`.
    pub fn start_with(options: &[&str]) -> Self {
        on_a_free_port("the RTSP server", |port| {
            let mut s = Self {
                port,
                options: options.iter().map(|o| o.to_string()).collect(),
                child: None,
            };
            s.try_resume().then_some(s)
        })
    }

    /// Starts serving (again) on the same port.
    pub fn resume(&mut self) {
        assert!(
            self.try_resume(),
            "the RTSP server could not listen on port {} again",
            self.port
        );
    }

    fn try_resume(&mut self) -> bool {
        assert!(self.child.is_none());
        let mut child = Command::new(Self::exe())
            .arg(self.port.to_string())
            .args(&self.options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the RTSP server starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // It says `ready` once it listens; a server that could not have the port says nothing.
        if !line.starts_with("ready ") {
            terminate(&mut child);
            return false;
        }
        self.child = Some(child);
        true
    }

    /// The camera drops off the network.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}
