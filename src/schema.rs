//! The names and records the element, the publisher and the report share: what `faceemotion`
//! calls its bus messages, events and metadata structures (and their fields), and the JSON
//! records `faceemotionpublish` writes and the report reads back.
//!
//! GStreamer-free: the element writes structures by these names (`faceemotion/meta.rs`), the
//! publisher reads them back into these records (`faceemotionpublish/json.rs`), and the report
//! deserialises the same records. One place, so that a field added for one is seen by all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The element message with a frame's faces.
pub const FRAME_MESSAGE: &str = "faceemotion";
/// The element message, and the serialized downstream event, of a person appearing or leaving.
pub const TRACK_EVENT: &str = "faceemotion-track";
/// The element message, and the downstream event, of a person entering or leaving a zone.
pub const ZONE_EVENT: &str = "faceemotion-zone";

/// ROI parameter structures, as DL Streamer names them, and ours beside them.
pub mod param {
    /// The box: `x_min y_min x_max y_max` (0..1), `confidence`, `label_id`, `label`, `object_id`.
    pub const DETECTION: &str = "detection";
    /// The person's emotion, smoothed.
    pub const EMOTION: &str = "emotion";
    /// The emotion model's own answer on this frame.
    pub const EMOTION_RAW: &str = "emotion-raw";
    pub const GENDER: &str = "gender";
    pub const AGE: &str = "age";
    /// DL Streamer's tracker writes the track id in a structure of its own, field `id`.
    pub const OBJECT_ID: &str = "object_id";
}

/// Fields of the ROI parameter structures.
pub mod field {
    pub const LABEL: &str = "label";
    pub const LABEL_ID: &str = "label_id";
    pub const CONFIDENCE: &str = "confidence";
    pub const MODEL_NAME: &str = "model_name";
    pub const X_MIN: &str = "x_min";
    pub const Y_MIN: &str = "y_min";
    pub const X_MAX: &str = "x_max";
    pub const Y_MAX: &str = "y_max";
    /// The track id in `detection` (and `id` in DL Streamer's `object_id` structure).
    pub const OBJECT_ID: &str = "object_id";
    /// The visitor (see `visitor.rs`) in `detection`, beside the track id, when recognition is on.
    pub const VISITOR_ID: &str = "visitor_id";
    /// The zones the face is in, in `detection` (an array of names), when zones are set.
    pub const ZONES: &str = "zones";
    pub const ID: &str = "id";
    /// Years, in the `age` structure.
    pub const AGE: &str = "age";
}

/// Fields of the track event structure (bus message and downstream event).
pub mod event {
    /// `appeared` or `left`.
    pub const EVENT: &str = "event";
    pub const ID: &str = "id";
    pub const FIRST: &str = "first";
    pub const LAST: &str = "last";
    pub const DURATION: &str = "duration";
    pub const FRAMES: &str = "frames";
    pub const EMOTION: &str = "emotion";
    /// A structure of that name: the share of the person's time in each emotion.
    pub const EMOTION_SHARE: &str = "emotion-share";
    pub const GENDER: &str = "gender";
    pub const GENDER_CONFIDENCE: &str = "gender-confidence";
    pub const AGE: &str = "age";
    /// Wall-clock time of the frame the event is about (RFC 3339, UTC), when known.
    pub const UTC: &str = "utc";
    /// With recognition on: the visitor the track is, which of their visits (1, 2, ...), and
    /// whether they came before (`visit` > 1).
    pub const VISITOR: &str = "visitor";
    pub const VISIT: &str = "visit";
    pub const RETURNING: &str = "returning";
    /// Of a `left` event: a structure of that name, seconds in each zone.
    pub const ZONES: &str = "zones";
    /// Of a zone event (`event` entered or exited): the zone's name, and the stream and running
    /// time of the first frame inside (outside); on exit `duration`, the stay (ns).
    pub const ZONE: &str = "zone";
    pub const TIMESTAMP: &str = "timestamp";
    pub const RUNNING_TIME: &str = "running-time";
}

/// Fields of the per-frame message, beside its `faces` list.
pub mod message {
    pub const TIMESTAMP: &str = "timestamp";
    pub const STREAM_TIME: &str = "stream-time";
    pub const RUNNING_TIME: &str = "running-time";
    pub const UTC: &str = "utc";
    pub const FACES: &str = "faces";
    /// Each face of the list is a structure of this name, with the fields below.
    pub const FACE: &str = "face";
    pub const X: &str = "x";
    pub const Y: &str = "y";
    pub const WIDTH: &str = "width";
    pub const HEIGHT: &str = "height";
    pub const CONFIDENCE: &str = "confidence";
    pub const ID: &str = "id";
    /// The visitor, with recognition on.
    pub const VISITOR: &str = "visitor";
    /// The zones the face is in (an array of names), when zones are set.
    pub const ZONES: &str = "zones";
    pub const EMOTION: &str = "emotion";
    pub const EMOTION_CONFIDENCE: &str = "emotion-confidence";
    pub const EMOTION_RAW: &str = "emotion-raw";
    pub const GENDER: &str = "gender";
    pub const GENDER_CONFIDENCE: &str = "gender-confidence";
    pub const AGE: &str = "age";
}

/// A model, as gvametaconvert names it in a classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Model {
    pub name: String,
}

/// A classification of an object (`emotion`, `gender`, `age` or any other model's), in
/// gvametaconvert's layout, with our numbers beside its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Classification {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub model: Model,
    /// The class probabilities of `emotion` and `emotion-raw`, by class name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<BTreeMap<String, f64>>,
    /// The years of `age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<f64>,
    /// Any other number the structure carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct BoundingBox {
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Detection {
    pub bounding_box: BoundingBox,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_id: Option<i64>,
}

/// One object (ROI) of a frame record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Object {
    /// The box in pixels.
    #[serde(default)]
    pub x: u32,
    #[serde(default)]
    pub y: u32,
    #[serde(default)]
    pub w: u32,
    #[serde(default)]
    pub h: u32,
    /// The ROI meta's id.
    #[serde(default)]
    pub region_id: i32,
    #[serde(default)]
    pub roi_type: String,
    /// The track id; none when the object is not tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The visitor the track is; none with recognition off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<u64>,
    /// The zones the face is in; none when no zones are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// Every other parameter structure with a `label` and a `model_name`, by its name. Read
    /// back, keys that are no classification (fields of another producer) are passed over.
    #[serde(flatten, deserialize_with = "classifications")]
    pub classifications: BTreeMap<String, Classification>,
}

fn classifications<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Classification>, D::Error> {
    let all = BTreeMap::<String, Value>::deserialize(d)?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
}

/// What a person event says: `type` appeared or left, the track id, the stream times of the
/// first and last frame seen (ns), the time present (ns), the frames, and the person's
/// estimates at that moment; or `type` zone-entered or zone-exited, the `zone`, the track id
/// (and visitor), and on exit the stay as `duration` (ns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PersonEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u64,
    #[serde(default)]
    pub first: u64,
    #[serde(default)]
    pub last: u64,
    #[serde(default)]
    pub duration: u64,
    #[serde(default)]
    pub frames: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion_share: Option<BTreeMap<String, f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender_confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<f64>,
    /// With recognition on: the visitor, which visit of theirs, whether they came before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returning: Option<bool>,
    /// Of a zone event: which zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Of a `left` event with zones set: seconds in each zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<BTreeMap<String, f64>>,
}

/// One JSON record: a frame's objects, or an event. `timestamp` is the stream time (ns) as DL
/// Streamer writes it; `utc` the wall-clock time of that frame, when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<Object>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<PersonEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
}

/// A Unix time (ns) as a record's `utc`: RFC 3339 in UTC with milliseconds.
pub fn utc(unix_ns: u64) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(unix_ns.min(i64::MAX as u64) as i64);
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time of day as a user writes it, as a Unix time (ns): RFC 3339 (with its offset or `Z`),
/// or a local date and time without offset (`2026-12-01T09:00:00`, also with a space), taken in
/// this machine's time zone.
pub fn parse_time_of_day(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(ns) = parse_utc(text) {
        return Some(ns);
    }
    use chrono::TimeZone;
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())?;
    let local = chrono::Local.from_local_datetime(&naive).earliest()?;
    u64::try_from(local.timestamp_nanos_opt()?).ok()
}

/// A record's `utc` back as a Unix time (ns).
pub fn parse_utc(text: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

impl Record {
    /// The record as JSON text, keys in alphabetical order at every level (as DL Streamer's C++
    /// library writes them; consumers must not depend on it, but tests and diffs read better).
    pub fn to_json(&self) -> String {
        // serde_json's map keeps its keys sorted; going through it sorts the struct's fields
        // and the flattened classifications alike.
        serde_json::to_value(self).map(|v| v.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_rfc3339_with_milliseconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_764_576_000_123_456_789), "2025-12-01T08:00:00.123Z");
        assert_eq!(parse_utc("2025-12-01T08:00:00.123Z"), Some(1_764_576_000_123_000_000));
        assert_eq!(
            parse_utc("2025-12-01T09:00:00.123+01:00"),
            Some(1_764_576_000_123_000_000)
        );
        assert_eq!(parse_utc("yesterday"), None);
        let local = parse_time_of_day("2026-12-01T09:00:00").unwrap();
        assert_eq!(parse_time_of_day("2026-12-01 09:00:00"), Some(local));
        assert_eq!(parse_time_of_day(" 2026-12-01T09:00 "), Some(local));
        assert_eq!(
            parse_time_of_day("2026-12-01T08:00:00Z"),
            Some(1_796_112_000_000_000_000)
        );
        assert_eq!(parse_time_of_day("9 o'clock"), None);
    }

    #[test]
    fn records_round_trip_with_sorted_keys() {
        let mut classifications = BTreeMap::new();
        classifications.insert(
            "emotion".to_string(),
            Classification {
                label: "happy".into(),
                label_id: Some(3),
                confidence: Some(0.9),
                model: Model { name: "m".into() },
                ..Default::default()
            },
        );
        let r = Record {
            objects: Some(vec![Object {
                x: 1,
                w: 2,
                id: Some(7),
                classifications,
                ..Default::default()
            }]),
            resolution: Some(Resolution {
                width: 640,
                height: 360,
            }),
            timestamp: Some(5),
            ..Default::default()
        };
        let text = r.to_json();
        assert!(
            text.starts_with(r#"{"objects":[{"emotion":{"confidence":0.9,"label":"happy","label_id":3,"model":{"name":"m"}},"h":0,"id":7,"#),
            "{text}"
        );
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        // Another producer's extra fields are no classifications, and no error.
        let other: Record =
            serde_json::from_str(r#"{"objects":[{"x":1,"y":2,"w":3,"h":4,"extra":5,"emotion":{"label":"sad"}}]}"#)
                .unwrap();
        let o = &other.objects.unwrap()[0];
        assert_eq!(o.classifications.keys().collect::<Vec<_>>(), ["emotion"]);
    }
}
