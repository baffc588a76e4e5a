//! The element: passes buffers through untouched, makes a JSON record of each frame's ROI metas
//! and of each track event, and hands them to a file or an MQTT broker.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::json::{self, Stamp};
use crate::publish::{FileFormat, FileOutput, MqttConfig, MqttOutput, Notice, Output, PublishStats, QoS};
use crate::schema::{Record, TRACK_EVENT, ZONE_EVENT};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceemotionpublish",
        gst::DebugColorFlags::empty(),
        Some("Face analysis results to a file or an MQTT broker"),
    )
});

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceEmotionPublishMethod")]
pub enum Method {
    #[enum_value(name = "File: a file, or standard output", nick = "file")]
    File = 0,
    #[enum_value(name = "MQTT: a message broker", nick = "mqtt")]
    Mqtt = 1,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceEmotionPublishFileFormat")]
pub enum Format {
    #[enum_value(name = "JSON lines: one record per line, appended", nick = "json-lines")]
    JsonLines = 0,
    #[enum_value(name = "JSON: one array of records, closed at the end", nick = "json")]
    Json = 1,
}

/// How long the end of the stream, and closing, wait for a broker to take what is queued.
const DEFAULT_DRAIN_TIMEOUT_MS: u32 = 5000;

#[derive(Debug, Clone)]
struct Settings {
    method: Method,
    file_path: String,
    file_format: Format,
    address: String,
    topic: String,
    client_id: String,
    qos: u32,
    max_connect_attempts: u32,
    max_reconnect_interval: u32,
    max_queued: u32,
    drain_timeout_ms: u32,
    add_empty_results: bool,
    source: String,
    tags: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            method: Method::File,
            file_path: String::new(),
            file_format: Format::JsonLines,
            address: "localhost:1883".into(),
            topic: "faceemotion".into(),
            client_id: String::new(),
            qos: 0,
            max_connect_attempts: 1,
            max_reconnect_interval: 30,
            max_queued: 1000,
            drain_timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS,
            add_empty_results: false,
            source: String::new(),
            tags: String::new(),
        }
    }
}

struct State {
    output: Output,
    tags: Option<serde_json::Value>,
    source: String,
    add_empty: bool,
    width: u32,
    height: u32,
}

#[derive(Default)]
pub struct FaceEmotionPublish {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The counters of the last output, kept after it closed.
    last_stats: Mutex<PublishStats>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaceEmotionPublish {
    fn send(&self, record: Record) -> Result<(), gst::FlowError> {
        let (sent, notices) = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Ok(());
            };
            let sent = state.output.send(record.to_json());
            *lock(&self.last_stats) = state.output.stats();
            (sent, state.output.take_notices())
        };
        // Posted with no lock held: a bus sync handler may call into the element (read stats).
        if let Err(e) = sent {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Write,
                ("{}", e),
                ["records cannot be written"]
            );
            return Err(gst::FlowError::Error);
        }
        self.report(notices)
    }

    /// The output's notices as bus messages; a failed output stops the stream.
    fn report(&self, notices: Vec<Notice>) -> Result<(), gst::FlowError> {
        let max_queued = lock(&self.settings).max_queued;
        for n in notices {
            match n {
                Notice::Disconnected(reason) => gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "the MQTT broker went away ({}): records wait in a queue of up to {} and are sent once it is back",
                        reason,
                        max_queued
                    ),
                    ["reconnecting with back-off"]
                ),
                Notice::Reconnected => {
                    let stats = *lock(&self.last_stats);
                    gst::element_imp_info!(
                        self,
                        gst::ResourceError::Write,
                        ("reconnected to the MQTT broker; sending the queued records"),
                        ["{:?}", stats]
                    )
                }
                Notice::Dropped(n) => gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "{} record(s) dropped: the queue of {} was full while the broker was away (max-queued); the stats property counts them",
                        n,
                        max_queued
                    ),
                    ["the oldest records go first"]
                ),
                Notice::Failed(e) => {
                    gst::element_imp_error!(self, gst::ResourceError::OpenWrite, ("{}", e), ["no records are published"]);
                    return Err(gst::FlowError::Error);
                }
            }
        }
        Ok(())
    }

    /// The notices not yet said, with no lock held while they are posted.
    fn report_pending(&self) {
        let notices = lock(&self.state)
            .as_mut()
            .map(|s| s.output.take_notices())
            .unwrap_or_default();
        // At the end of the stream a failed output has nothing more to stop: its error is said.
        let _ = self.report(notices);
    }

    fn stream_time(&self, buf: &gst::BufferRef) -> Option<u64> {
        let segment = self.obj().segment();
        let pts = buf.pts()?;
        segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_stream_time(pts))
            .or(Some(pts))
            .map(|t| t.nseconds())
    }

    fn drain_timeout(&self) -> Duration {
        Duration::from_millis(lock(&self.settings).drain_timeout_ms as u64)
    }

    /// At the end of the stream: waits (up to drain-timeout) for what is queued to be
    /// delivered, so that an application that reads the stats at EOS, or stays in PLAYING after
    /// it, sees every record delivered. The state is not held meanwhile: the properties stay
    /// readable and the output keeps working.
    ///
    /// What the output noticed meanwhile (a broker that refused the connection) is said before
    /// the EOS goes on: an application that takes EOS for success must see the error first.
    fn drain(&self) {
        let drain = lock(&self.state).as_ref().and_then(|s| s.output.drain());
        let Some(drain) = drain else {
            self.report_pending();
            return;
        };
        let wait = self.drain_timeout();
        let stats = drain.wait(wait);
        if let Some(state) = lock(&self.state).as_ref() {
            *lock(&self.last_stats) = state.output.stats();
        }
        self.report_pending();
        if stats.queued > 0 {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "{} record(s) still waiting for the MQTT broker {} ms after the end of the stream (drain-timeout)",
                    stats.queued,
                    wait.as_millis()
                ),
                ["they are sent if the broker comes back before the element stops; then the rest counts as dropped: {:?}", stats]
            );
        } else {
            gst::debug!(
                CAT,
                imp = self,
                "every record delivered at the end of the stream: {stats:?}"
            );
        }
    }

    fn close(&self) {
        let wait = self.drain_timeout();
        let state = lock(&self.state).take();
        if let Some(mut state) = state {
            let finished = state.output.finish(wait);
            let notices = state.output.take_notices();
            match finished {
                Ok(stats) => {
                    *lock(&self.last_stats) = stats;
                    if stats.dropped > 0 {
                        gst::element_imp_warning!(
                            self,
                            gst::ResourceError::Write,
                            ("{} of {} records could not be delivered", stats.dropped, stats.sent),
                            ["{:?}", stats]
                        );
                    }
                    gst::info!(CAT, imp = self, "closed: {stats:?}");
                }
                Err(e) => gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e), ["closing"]),
            }
            let _ = self.report(notices);
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEmotionPublish {
    const NAME: &'static str = "GstFaceEmotionPublish";
    type Type = super::FaceEmotionPublish;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for FaceEmotionPublish {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("method", Method::File)
                    .nick("Method")
                    .blurb("Where the records go: a file (or standard output), or an MQTT broker")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("file-path")
                    .nick("File path")
                    .blurb("File for method=file; empty or '-': standard output")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("file-format", Format::JsonLines)
                    .nick("File format")
                    .blurb("json-lines: one record per line, appended to the file; json: one array, the file rewritten")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("address")
                    .nick("Broker address")
                    .blurb("host:port of the MQTT broker")
                    .default_value(Some("localhost:1883"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("topic")
                    .nick("Topic")
                    .blurb("MQTT topic of the records (frames and track events)")
                    .default_value(Some("faceemotion"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("client-id")
                    .nick("Client id")
                    .blurb("MQTT client id; empty: faceemotion-<process id>-<element name>")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("qos")
                    .nick("QoS")
                    .blurb(
                        "MQTT quality of service: 0 (sent once; what a broken connection held may be lost) or 1 \
                         (acknowledged; sent again until it is, so exact counts)",
                    )
                    .maximum(1)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-connect-attempts")
                    .nick("Connect attempts")
                    .blurb("Attempts at the first connection before the element fails")
                    .minimum(1)
                    .maximum(10)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-reconnect-interval")
                    .nick("Maximum reconnect interval (s)")
                    .blurb("After a lost connection, attempts start 1 s apart and double up to this")
                    .minimum(1)
                    .maximum(300)
                    .default_value(30)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-queued")
                    .nick("Queue size")
                    .blurb("Records that wait while the broker is away; beyond, the oldest are dropped (and counted)")
                    .minimum(1)
                    .maximum(10_000_000)
                    .default_value(1000)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("drain-timeout")
                    .nick("Drain timeout (ms)")
                    .blurb(
                        "At the end of the stream, wait up to this long for the records still queued or in flight \
                         to reach the broker before passing the end on; at stop, what is left after this long \
                         more is counted as dropped",
                    )
                    .maximum(3_600_000)
                    .default_value(DEFAULT_DRAIN_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("add-empty-results")
                    .nick("Add empty results")
                    .blurb("Also write a record for frames without any object")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("source")
                    .nick("Source")
                    .blurb("Written as 'source' in every record (e.g. the camera or file name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tags")
                    .nick("Tags")
                    .blurb("A JSON object written as 'tags' in every record, e.g. {\"store\":\"north\"}")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Since start: records (handed to the output), published (written, or taken by the broker), \
                         dropped, queued (waiting now), reconnects and connected",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let v = value;
        match pspec.name() {
            "method" => s.method = v.get().expect("type checked upstream"),
            "file-path" => {
                s.file_path = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "file-format" => s.file_format = v.get().expect("type checked upstream"),
            "address" => {
                s.address = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "topic" => {
                s.topic = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "client-id" => {
                s.client_id = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "qos" => s.qos = v.get().expect("type checked upstream"),
            "max-connect-attempts" => s.max_connect_attempts = v.get().expect("type checked upstream"),
            "max-reconnect-interval" => s.max_reconnect_interval = v.get().expect("type checked upstream"),
            "max-queued" => s.max_queued = v.get().expect("type checked upstream"),
            "drain-timeout" => s.drain_timeout_ms = v.get().expect("type checked upstream"),
            "add-empty-results" => {
                s.add_empty_results = v.get().expect("type checked upstream");
                if let Some(st) = lock(&self.state).as_mut() {
                    st.add_empty = s.add_empty_results;
                }
            }
            "source" => {
                s.source = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "tags" => {
                s.tags = v
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "method" => s.method.to_value(),
            "file-path" => s.file_path.to_value(),
            "file-format" => s.file_format.to_value(),
            "address" => s.address.to_value(),
            "topic" => s.topic.to_value(),
            "client-id" => s.client_id.to_value(),
            "qos" => s.qos.to_value(),
            "max-connect-attempts" => s.max_connect_attempts.to_value(),
            "max-reconnect-interval" => s.max_reconnect_interval.to_value(),
            "max-queued" => s.max_queued.to_value(),
            "drain-timeout" => s.drain_timeout_ms.to_value(),
            "add-empty-results" => s.add_empty_results.to_value(),
            "source" => s.source.to_value(),
            "tags" => s.tags.to_value(),
            "stats" => {
                let st = lock(&self.state)
                    .as_ref()
                    .map(|s| s.output.stats())
                    .unwrap_or_else(|| *lock(&self.last_stats));
                gst::Structure::builder("faceemotionpublish-stats")
                    .field("records", st.sent)
                    .field("published", st.published)
                    .field("dropped", st.dropped)
                    .field("queued", st.queued)
                    .field("reconnects", st.reconnects)
                    .field("connected", st.connected)
                    .build()
                    .to_value()
            }
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for FaceEmotionPublish {}

impl ElementImpl for FaceEmotionPublish {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face analysis results publisher",
                "Filter/Metadata",
                "Writes each frame's ROI metadata (as DL Streamer's gvametaconvert lays it out) and faceemotion's \
                 track events as JSON records to a file or an MQTT broker; buffers pass untouched",
                "faceemotion developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for FaceEmotionPublish {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = lock(&self.settings).clone();
        let tags = json::parse_tags(&s.tags).map_err(|e| {
            gst::error_msg!(
                gst::LibraryError::Settings,
                ("{}: give an object such as {{\"camera\":\"door\"}}", e)
            )
        })?;
        let output = match s.method {
            Method::File => {
                let format = match s.file_format {
                    Format::JsonLines => FileFormat::JsonLines,
                    Format::Json => FileFormat::Json,
                };
                Output::File(
                    FileOutput::open(&s.file_path, format)
                        .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", e)))?,
                )
            }
            Method::Mqtt => {
                let client_id = if s.client_id.is_empty() {
                    format!("faceemotion-{}-{}", std::process::id(), self.obj().name())
                } else {
                    s.client_id.clone()
                };
                Output::Mqtt(
                    MqttOutput::start(MqttConfig {
                        address: s.address.clone(),
                        topic: s.topic.clone(),
                        client_id,
                        qos: if s.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce },
                        max_connect_attempts: s.max_connect_attempts,
                        max_reconnect_interval: Duration::from_secs(s.max_reconnect_interval as u64),
                        max_queued: s.max_queued as usize,
                    })
                    .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?,
                )
            }
        };
        *lock(&self.last_stats) = PublishStats::default();
        *lock(&self.state) = Some(State {
            output,
            tags,
            source: s.source,
            add_empty: s.add_empty_results,
            width: 0,
            height: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.close();
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let (w, h) = incaps
            .structure(0)
            .map(|s| (s.get::<i32>("width").unwrap_or(0), s.get::<i32>("height").unwrap_or(0)))
            .unwrap_or((0, 0));
        if let Some(st) = lock(&self.state).as_mut() {
            (st.width, st.height) = (w.max(0) as u32, h.max(0) as u32);
        }
        Ok(())
    }

    fn transform_ip_passthrough(&self, buf: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let timestamp = self.stream_time(buf);
        let record = {
            let guard = lock(&self.state);
            let Some(st) = guard.as_ref() else {
                return Err(gst::FlowError::Flushing);
            };
            let stamp = Stamp {
                timestamp,
                utc: crate::walltime::utc_of(buf),
                source: &st.source,
                tags: st.tags.as_ref(),
            };
            json::frame(buf, st.width, st.height, stamp, st.add_empty)
        };
        if let Some(r) = record {
            self.send(r)?;
        } else {
            let notices = lock(&self.state)
                .as_mut()
                .map(|s| s.output.take_notices())
                .unwrap_or_default();
            self.report(notices)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::CustomDownstream(e) => {
                if let Some(s) = e
                    .structure()
                    .filter(|s| s.name() == TRACK_EVENT || s.name() == ZONE_EVENT)
                {
                    let record = lock(&self.state).as_ref().map(|st| {
                        let stamp = Stamp {
                            source: &st.source,
                            tags: st.tags.as_ref(),
                            ..Stamp::default()
                        };
                        if s.name() == ZONE_EVENT {
                            json::zone_event(s, stamp)
                        } else {
                            json::track_event(s, stamp)
                        }
                    });
                    if let Some(r) = record {
                        let _ = self.send(r);
                    }
                }
            }
            gst::EventView::Eos(_) => self.drain(),
            _ => {}
        }
        self.parent_sink_event(event)
    }
}
