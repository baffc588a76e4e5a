//! The wall-clock time of frames, as GStreamer carries it: a `GstReferenceTimestampMeta` with
//! caps `timestamp/x-unix` (ns since 1970, UTC), or `timestamp/x-ntp` (ns since 1900), which
//! `rtspsrc add-reference-timestamp-meta=true` attaches from the camera's RTCP sender reports.
//!
//! `faceemotion` puts a `timestamp/x-unix` meta on every frame whose time of day it knows, so
//! that `faceemotionpublish` (and any application) reads it from the buffer.

/// Reference timestamps in Unix time.
pub const UNIX_CAPS: &str = "timestamp/x-unix";
/// Reference timestamps in NTP time (what rtspsrc attaches).
pub const NTP_CAPS: &str = "timestamp/x-ntp";
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_NS: u64 = 2_208_988_800 * 1_000_000_000;

/// The Unix time (ns) a buffer's reference timestamp meta gives, Unix first, then NTP.
pub fn unix_ns(buf: &gst::BufferRef) -> Option<u64> {
    let mut ntp = None;
    for m in buf.iter_meta::<gst::ReferenceTimestampMeta>() {
        let Some(name) = m.reference().structure(0).map(|s| s.name()) else {
            continue;
        };
        if name == UNIX_CAPS {
            return Some(m.timestamp().nseconds());
        }
        if name == NTP_CAPS {
            ntp = m.timestamp().nseconds().checked_sub(NTP_UNIX_OFFSET_NS);
        }
    }
    ntp
}

/// The reference caps of Unix time, made once.
pub fn unix_caps() -> &'static gst::Caps {
    static CAPS: std::sync::LazyLock<gst::Caps> = std::sync::LazyLock::new(|| gst::Caps::new_empty_simple(UNIX_CAPS));
    &CAPS
}

/// Attaches the Unix time of a frame, unless the buffer already has one.
pub fn attach(buf: &mut gst::BufferRef, unix_ns: u64) {
    if buf
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .any(|m| m.reference().structure(0).is_some_and(|s| s.name() == UNIX_CAPS))
    {
        return;
    }
    gst::ReferenceTimestampMeta::add(
        buf,
        unix_caps(),
        gst::ClockTime::from_nseconds(unix_ns),
        gst::ClockTime::NONE,
    );
}

/// The record's `utc` field of a buffer: its Unix time as RFC 3339.
pub fn utc_of(buf: &gst::BufferRef) -> Option<String> {
    unix_ns(buf).map(crate::schema::utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_before_ntp_and_attach_once() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        assert_eq!(unix_ns(b), None);
        let ntp = gst::Caps::new_empty_simple(NTP_CAPS);
        gst::ReferenceTimestampMeta::add(
            b,
            &ntp,
            gst::ClockTime::from_nseconds(NTP_UNIX_OFFSET_NS + 5),
            gst::ClockTime::NONE,
        );
        assert_eq!(unix_ns(b), Some(5));
        attach(b, 1_764_576_000_123_000_000);
        attach(b, 7);
        assert_eq!(unix_ns(b), Some(1_764_576_000_123_000_000));
        assert_eq!(utc_of(b).as_deref(), Some("2025-12-01T08:00:00.123Z"));
    }
}
