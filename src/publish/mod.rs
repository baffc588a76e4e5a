//! Where records go: a file (or standard output) or an MQTT broker. GStreamer-free; the
//! `faceemotionpublish` element makes the records and hands them here.

mod file;
mod mqtt;

pub use file::{FileFormat, FileOutput};
pub use mqtt::{Drain, MqttConfig, MqttOutput, QoS};

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum PublishError {
    #[error("cannot write results to {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{property}={value:?}: {reason}")]
    Setting {
        /// The element property that has the bad value.
        property: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "could not connect to the MQTT broker at {address} after {attempts} attempt(s): {reason}. Start the \
         broker (e.g. `mosquitto -p {port}`) or set address to where one runs"
    )]
    Connect {
        address: String,
        port: u16,
        attempts: u32,
        reason: String,
    },
}

/// Counters of an output since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Records handed to the output.
    pub sent: u64,
    /// Records written (file), or handed to the broker (MQTT QoS 0) or acknowledged by it (QoS 1).
    pub published: u64,
    /// Records that had to be given up: the queue was full while the broker was away, or they
    /// were still waiting when the output closed.
    pub dropped: u64,
    /// Records waiting now.
    pub queued: u64,
    /// Connections made to the broker after the first one.
    pub reconnects: u64,
    pub connected: bool,
}

/// Something an output has to say to the user (the element turns these into bus messages).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The broker went away; records now wait in the queue.
    Disconnected(String),
    Reconnected,
    /// The queue overflowed: this many records were dropped since the last notice.
    Dropped(u64),
    /// The output failed for good.
    Failed(PublishError),
}

pub enum Output {
    File(FileOutput),
    Mqtt(MqttOutput),
}

impl Output {
    /// Hands one record (a JSON text) to the output; never waits on the network.
    pub fn send(&mut self, record: String) -> Result<(), PublishError> {
        match self {
            Output::File(f) => f.send(&record),
            Output::Mqtt(m) => {
                m.send(record);
                Ok(())
            }
        }
    }

    pub fn stats(&self) -> PublishStats {
        match self {
            Output::File(f) => f.stats(),
            Output::Mqtt(m) => m.stats(),
        }
    }

    /// What the output has to say since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        match self {
            Output::File(_) => Vec::new(),
            Output::Mqtt(m) => m.take_notices(),
        }
    }

    /// Something to wait on until what was handed to the output has been delivered, without
    /// holding the output: the element waits on it at the end of the stream while its
    /// properties stay readable. `None`: the output delivers as it is given records (a file).
    pub fn drain(&self) -> Option<Drain> {
        match self {
            Output::File(_) => None,
            Output::Mqtt(m) => Some(m.drain()),
        }
    }

    /// Closes the output: a JSON array gets its end, a broker gets what is queued (for at most
    /// `wait`); what could not be delivered is counted as dropped.
    pub fn finish(&mut self, wait: std::time::Duration) -> Result<PublishStats, PublishError> {
        match self {
            Output::File(f) => f.finish(),
            Output::Mqtt(m) => Ok(m.finish(wait)),
        }
    }
}
