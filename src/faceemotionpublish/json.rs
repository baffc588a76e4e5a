//! Records in the shape of DL Streamer's `gvametaconvert`, from any DL Streamer-style ROI meta,
//! and records of the track events `faceemotion` sends downstream: the structures read back by
//! the names of [`crate::schema`] into its record types.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::face::EMOTIONS;
use crate::schema::{self, event, field, param, Classification, Detection, Object, PersonEvent, Record};

/// Fields of a classification structure that the record names itself.
const STANDARD: [&str; 4] = [field::LABEL, field::LABEL_ID, field::CONFIDENCE, field::MODEL_NAME];

fn number(v: &glib::SendValue) -> Option<f64> {
    v.get::<f64>()
        .ok()
        .or_else(|| v.get::<f32>().ok().map(f64::from))
        .or_else(|| v.get::<i32>().ok().map(f64::from))
        .or_else(|| v.get::<u32>().ok().map(f64::from))
        .or_else(|| v.get::<i64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<u64>().ok().map(|x| x as f64))
}

fn int(s: &gst::StructureRef, name: &str) -> Option<i64> {
    s.get::<i32>(name)
        .ok()
        .map(i64::from)
        .or_else(|| s.get::<u32>(name).ok().map(i64::from))
        .or_else(|| s.get::<i64>(name).ok())
        .or_else(|| s.get::<u64>(name).ok().and_then(|x| i64::try_from(x).ok()))
}

fn uint(s: &gst::StructureRef, name: &str) -> Option<u64> {
    int(s, name).and_then(|v| u64::try_from(v).ok())
}

fn double(s: &gst::StructureRef, name: &str) -> Option<f64> {
    s.value(name).ok().and_then(number)
}

fn string(s: &gst::StructureRef, name: &str) -> Option<String> {
    s.get::<&str>(name).ok().map(str::to_string)
}

/// A classification: `{label, label_id, confidence, model {name}}` as gvametaconvert writes it,
/// with the structure's other numbers beside them: the class probabilities of `emotion` and
/// `emotion-raw` as `probabilities`, the years of `age` as `years`, anything else as `values`.
fn classification(s: &gst::StructureRef) -> Option<Classification> {
    let label = s.get::<&str>(field::LABEL).ok()?;
    let model = s.get::<&str>(field::MODEL_NAME).ok()?;
    let mut c = Classification {
        label: label.to_string(),
        label_id: int(s, field::LABEL_ID),
        confidence: double(s, field::CONFIDENCE),
        model: schema::Model {
            name: model.to_string(),
        },
        ..Default::default()
    };
    let extra: BTreeMap<String, f64> = s
        .iter()
        .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), number(v)?)))
        .collect();
    let name = s.name().as_str();
    if (name == param::EMOTION || name == param::EMOTION_RAW) && EMOTIONS.iter().all(|e| extra.contains_key(*e)) {
        c.probabilities = Some(extra);
    } else if name == param::AGE && extra.len() == 1 && extra.contains_key(field::AGE) {
        c.years = extra.get(field::AGE).copied();
    } else if !extra.is_empty() {
        c.values = Some(extra);
    }
    Some(c)
}

/// One object of a frame record from one ROI meta.
pub fn object(meta: &gst_video::VideoRegionOfInterestMeta, width: u32, height: u32) -> Object {
    let (x, y, w, h) = meta.rect();
    let mut o = Object {
        x,
        y,
        w,
        h,
        region_id: meta.id(),
        roi_type: meta.roi_type().to_string(),
        ..Default::default()
    };
    let mut id = None;
    for s in meta.params() {
        match s.name().as_str() {
            param::DETECTION => {
                let (fw, fh) = (width.max(1) as f64, height.max(1) as f64);
                // In f64: a box from another element may reach past u32 (x + w overflowing).
                let (x, y, w, h) = (x as f64, y as f64, w as f64, h as f64);
                let b = |k: &str, px: f64| double(s, k).unwrap_or(px);
                o.detection = Some(Detection {
                    bounding_box: schema::BoundingBox {
                        x_min: b(field::X_MIN, x / fw),
                        y_min: b(field::Y_MIN, y / fh),
                        x_max: b(field::X_MAX, (x + w) / fw),
                        y_max: b(field::Y_MAX, (y + h) / fh),
                    },
                    confidence: double(s, field::CONFIDENCE),
                    label: string(s, field::LABEL),
                    label_id: int(s, field::LABEL_ID),
                });
                id = id.or(int(s, field::OBJECT_ID).filter(|&i| i > 0));
                o.visitor = uint(s, field::VISITOR_ID).filter(|&v| v > 0);
                o.zones = s
                    .get::<gst::Array>(field::ZONES)
                    .ok()
                    .map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect());
            }
            // DL Streamer's tracker writes the id in a structure of its own.
            param::OBJECT_ID => id = int(s, field::ID).or(id),
            name => {
                if let Some(c) = classification(s) {
                    o.classifications.insert(name.to_string(), c);
                }
            }
        }
    }
    o.id = id;
    o
}

/// What every record of an element carries besides its content.
#[derive(Debug, Clone, Default)]
pub struct Stamp<'a> {
    /// Stream time (ns).
    pub timestamp: Option<u64>,
    /// Wall-clock time, RFC 3339.
    pub utc: Option<String>,
    pub source: &'a str,
    pub tags: Option<&'a Value>,
}

fn stamp(r: &mut Record, s: Stamp) {
    r.timestamp = s.timestamp;
    r.utc = s.utc;
    r.source = (!s.source.is_empty()).then(|| s.source.to_string());
    r.tags = s.tags.cloned();
}

/// A frame record: `objects`, `resolution`, `timestamp`, `source`, `tags`; `None` for a frame
/// without objects unless `add_empty`.
pub fn frame(buf: &gst::BufferRef, width: u32, height: u32, s: Stamp, add_empty: bool) -> Option<Record> {
    let objects: Vec<Object> = buf
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| object(&m, width, height))
        .collect();
    if objects.is_empty() && !add_empty {
        return None;
    }
    let mut r = Record {
        objects: Some(objects),
        resolution: Some(schema::Resolution { width, height }),
        ..Default::default()
    };
    stamp(&mut r, s);
    Some(r)
}

/// The person event of a `faceemotion-track` structure.
pub fn person_event(s: &gst::StructureRef) -> PersonEvent {
    PersonEvent {
        kind: string(s, event::EVENT).unwrap_or_default(),
        id: uint(s, event::ID).unwrap_or(0),
        first: uint(s, event::FIRST).unwrap_or(0),
        last: uint(s, event::LAST).unwrap_or(0),
        duration: uint(s, event::DURATION).unwrap_or(0),
        frames: uint(s, event::FRAMES).unwrap_or(0),
        emotion: string(s, event::EMOTION),
        emotion_share: s.get::<gst::Structure>(event::EMOTION_SHARE).ok().map(|share| {
            share
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), number(v)?)))
                .collect()
        }),
        gender: string(s, event::GENDER),
        gender_confidence: double(s, event::GENDER_CONFIDENCE),
        age: double(s, event::AGE),
        visitor: uint(s, event::VISITOR),
        visit: uint(s, event::VISIT).and_then(|v| u32::try_from(v).ok()),
        returning: s.get::<bool>(event::RETURNING).ok(),
        zone: None,
        zones: s.get::<gst::Structure>(event::ZONES).ok().map(|z| {
            z.iter()
                .filter_map(|(k, v)| Some((k.to_string(), number(v)?)))
                .collect()
        }),
    }
}

/// A zone event record (`faceemotion-zone`): `event` of type `zone-entered` or `zone-exited`
/// with the zone, the track id (and visitor) and, on exit, the stay as `duration` (ns),
/// timestamped with the first frame inside (outside).
pub fn zone_event(s: &gst::StructureRef, mut st: Stamp) -> Record {
    let kind = match string(s, event::EVENT).as_deref() {
        Some("entered") => "zone-entered",
        _ => "zone-exited",
    };
    let ts = uint(s, event::TIMESTAMP).unwrap_or(0);
    let e = PersonEvent {
        kind: kind.into(),
        id: uint(s, event::ID).unwrap_or(0),
        first: ts,
        last: ts,
        duration: uint(s, event::DURATION).unwrap_or(0),
        visitor: uint(s, event::VISITOR),
        zone: string(s, event::ZONE),
        ..Default::default()
    };
    st.timestamp = Some(ts);
    st.utc = string(s, event::UTC);
    let mut r = Record {
        event: Some(e),
        ..Default::default()
    };
    stamp(&mut r, st);
    r
}

/// A track event record: `event` with the person's summary, timestamped with the person's first
/// frame (appeared) or last frame (left).
pub fn track_event(s: &gst::StructureRef, mut st: Stamp) -> Record {
    let e = person_event(s);
    st.timestamp = Some(if e.kind == "left" { e.last } else { e.first });
    st.utc = string(s, event::UTC);
    let mut r = Record {
        event: Some(e),
        ..Default::default()
    };
    stamp(&mut r, st);
    r
}

/// `tags` as a record carries them: a JSON object, else an error that says what it is.
pub fn parse_tags(text: &str) -> Result<Option<Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("tags is not JSON ({e})"))?;
    match v {
        Value::Object(_) => Ok(Some(v)),
        other => {
            let what = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(format!("tags is {what}, not a JSON object"))
        }
    }
}

use gst::glib;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_must_be_an_object() {
        assert_eq!(parse_tags("").unwrap(), None);
        assert!(parse_tags(r#"{"store":"north"}"#).unwrap().is_some());
        for (t, what) in [
            ("[1,2]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a number"),
            ("null", "null"),
        ] {
            let e = parse_tags(t).unwrap_err();
            assert!(e.contains(what) && e.contains("not a JSON object"), "{t}: {e}");
        }
        assert!(parse_tags("{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn boxes_at_the_end_of_u32_do_not_overflow() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        {
            let b = buf.get_mut().unwrap();
            let mut m =
                gst_video::VideoRegionOfInterestMeta::add(b, "face", (u32::MAX - 1, u32::MAX - 1, u32::MAX, 10));
            m.add_param(
                gst::Structure::builder(param::DETECTION)
                    .field(field::CONFIDENCE, 0.5f64)
                    .build(),
            );
        }
        let r = frame(&buf, 640, 360, Stamp::default(), false).unwrap();
        let bb = r.objects.unwrap()[0].detection.as_ref().unwrap().bounding_box;
        assert!(bb.x_max > bb.x_min && bb.x_max.is_finite(), "{bb:?}");
    }
}
