//! What a connection's pipeline is made of: the source, the streams it offers, and the tail
//! that keeps the video (and audio) as it comes and writes the analysed copy.
//!
//! The tail is built once the source has shown all its streams (`no-more-pads`), with the
//! source's pads blocked meanwhile: the original copy's muxer must know of the audio before
//! the first video data reaches it, and the parser and decoder follow the video codec.

use std::path::Path;

use gst::prelude::*;

use super::segments;

/// Video codecs kept as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    H264,
    H265,
}

impl Video {
    pub fn name(self) -> &'static str {
        match self {
            Video::H264 => "H.264",
            Video::H265 => "H.265",
        }
    }
    fn depayloader(self) -> &'static str {
        match self {
            Video::H264 => "rtph264depay",
            Video::H265 => "rtph265depay",
        }
    }
    fn parser(self) -> &'static str {
        match self {
            Video::H264 => "h264parse",
            Video::H265 => "h265parse",
        }
    }
    fn decoder(self) -> &'static str {
        match self {
            Video::H264 => "avdec_h264",
            Video::H265 => "avdec_h265",
        }
    }
}

/// How the camera's audio goes into the original copy: as it comes where MP4 carries it, else
/// (G.711, which GStreamer's MP4 muxer does not take) decoded and encoded as AAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// What the camera sends, for the log.
    pub name: String,
    /// RTP depayloader (cameras), none for a file's parsed stream.
    depay: Option<&'static str>,
    /// The steps into MP4: a parser, or a decoder followed by the AAC encoder.
    chain: String,
    pub transcoded: bool,
}

/// Decoded audio into the AAC that MP4 carries.
const TO_AAC: &str = "audioconvert ! audioresample ! avenc_aac ! aacparse";

fn to_aac(decoder: &str) -> String {
    format!("{decoder} ! {TO_AAC}")
}

/// What a source pad carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    Video(Video),
    Audio(Audio),
    /// A stream that cannot be kept; `video` tells whether it was the picture.
    Other {
        what: String,
        video: bool,
    },
}

/// A camera's RTP stream, from its pad's caps (`application/x-rtp, media=..., encoding-name=...`).
pub fn rtp_stream(caps: &gst::StructureRef) -> Stream {
    let media = caps.get::<&str>("media").unwrap_or("");
    let encoding = caps.get::<&str>("encoding-name").unwrap_or("").to_ascii_uppercase();
    let audio = |name: &str, depay, chain: String, transcoded| {
        Stream::Audio(Audio {
            name: name.to_string(),
            depay: Some(depay),
            chain,
            transcoded,
        })
    };
    match (media, encoding.as_str()) {
        ("video", "H264") => Stream::Video(Video::H264),
        ("video", "H265") => Stream::Video(Video::H265),
        ("audio", "MPEG4-GENERIC") => audio("AAC", "rtpmp4gdepay", "aacparse".into(), false),
        ("audio", "MP4A-LATM") => audio("AAC (LATM)", "rtpmp4adepay", "aacparse".into(), false),
        ("audio", "OPUS") => audio("Opus", "rtpopusdepay", "opusparse".into(), false),
        ("audio", "PCMA") => audio("G.711 A-law (PCMA)", "rtppcmadepay", to_aac("alawdec"), true),
        ("audio", "PCMU") => audio("G.711 mu-law (PCMU)", "rtppcmudepay", to_aac("mulawdec"), true),
        (m, e) => Stream::Other {
            what: format!("{m} {e}"),
            video: m == "video",
        },
    }
}

/// A file's stream as `parsebin` gives it.
pub fn parsed_stream(caps: &gst::StructureRef) -> Stream {
    let name = caps.name().as_str();
    let audio = |what: &str, chain: String, transcoded| {
        Stream::Audio(Audio {
            name: what.to_string(),
            depay: None,
            chain,
            transcoded,
        })
    };
    match name {
        "video/x-h264" => Stream::Video(Video::H264),
        "video/x-h265" => Stream::Video(Video::H265),
        "audio/mpeg" if caps.get::<i32>("mpegversion").is_ok_and(|v| v == 2 || v == 4) => {
            audio("AAC", "aacparse".into(), false)
        }
        "audio/mpeg" => audio("MP3", "mpegaudioparse".into(), false),
        "audio/x-opus" => audio("Opus", "opusparse".into(), false),
        "audio/x-alaw" => audio("G.711 A-law", to_aac("alawdec"), true),
        "audio/x-mulaw" => audio("G.711 mu-law", to_aac("mulawdec"), true),
        other if other.starts_with("audio/") => audio(other, to_aac("decodebin"), true),
        other => Stream::Other {
            what: other.to_string(),
            video: other.starts_with("video/") || other.starts_with("image/"),
        },
    }
}

/// The recording settings the tail needs.
pub struct TailSettings<'a> {
    pub dir: &'a Path,
    pub segment_ns: u64,
    pub start_index: u32,
}

/// The tail of a connection: video in (pad `video`) to the original copy and, decoded, analysed
/// and encoded again, to the annotated copy; audio in (pad `audio`) to the original copy.
/// `faceemotion` is named `fe`, the splitmuxsinks by [`segments::KINDS`].
pub fn tail(video: Video, audio: Option<&Audio>, live: bool, s: &TailSettings) -> Result<gst::Bin, String> {
    let quote = |p: String| p.replace('"', "\\\"");
    let (orig, ann) = (
        quote(segments::pattern(s.dir, "original")),
        quote(segments::pattern(s.dir, "annotated")),
    );
    let (seg, start) = (s.segment_ns, s.start_index);
    let depay = if live {
        format!("{} name=vin ! ", video.depayloader())
    } else {
        String::new()
    };
    let parse_name = if live { "" } else { "name=vin" };
    let mut desc = format!(
        "{depay}{parser} config-interval=-1 {parse_name} ! tee name=t \
         t. ! queue name=qo ! original.video \
         t. ! queue name=qa max-size-time=5000000000 max-size-bytes=0 max-size-buffers=0 ! {decoder} ! videoconvert \
            ! faceemotion name=fe ! videoconvert ! x264enc speed-preset=veryfast tune=zerolatency key-int-max=60 \
            ! h264parse ! splitmuxsink name=annotated send-keyframe-requests=true location=\"{ann}\" \
              max-size-time={seg} start-index={start} \
         splitmuxsink name=original location=\"{orig}\" max-size-time={seg} start-index={start}",
        parser = video.parser(),
        decoder = video.decoder(),
    );
    if let Some(a) = audio {
        let entry = match a.depay {
            Some(d) => format!("{d} name=ain ! {}", a.chain),
            None => format!("identity name=ain ! {}", a.chain),
        };
        desc += &format!(" {entry} ! queue name=qaudio max-size-time=5000000000 max-size-bytes=0 max-size-buffers=0 ! original.audio_0");
    }
    let bin = gst::parse::bin_from_description(&desc, false).map_err(|e| format!("pipeline: {e}"))?;
    for (element, pad) in [("vin", "video"), ("ain", "audio")] {
        let Some(target) = bin.by_name(element).and_then(|e| e.static_pad("sink")) else {
            continue;
        };
        let ghost = gst::GhostPad::builder_with_target(&target)
            .map_err(|e| e.to_string())?
            .name(pad)
            .build();
        bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    }
    // Each branch's end is its file sink's last EOS, which the splitmuxsink forwards (wrapped)
    // to the bus; see `branch_ended` in mod.rs.
    for name in segments::KINDS {
        bin.by_name(name)
            .ok_or("no splitmuxsink")?
            .set_property("message-forward", true);
    }
    Ok(bin)
}

/// Sends an end into every input of the tail, so that each splitmuxsink finishes its segment
/// (the original copy's muxer waits for the end of its audio too).
pub fn close(tail: &gst::Bin) {
    for pad in ["t", "ain"]
        .into_iter()
        .filter_map(|name| tail.by_name(name)?.static_pad("sink"))
    {
        // The source's thread may be gone or blocked; the event goes in from here.
        let _ = pad.send_event(gst::event::Eos::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_told_apart_by_their_caps() {
        gst::init().unwrap();
        let rtp = |media: &str, enc: &str| {
            let s = gst::Structure::builder("application/x-rtp")
                .field("media", media)
                .field("encoding-name", enc)
                .build();
            rtp_stream(&s)
        };
        assert_eq!(rtp("video", "H264"), Stream::Video(Video::H264));
        assert_eq!(rtp("video", "H265"), Stream::Video(Video::H265));
        assert!(matches!(rtp("audio", "PCMA"), Stream::Audio(a) if a.transcoded));
        assert!(matches!(rtp("audio", "MPEG4-GENERIC"), Stream::Audio(a) if !a.transcoded));
        assert!(matches!(rtp("video", "JPEG"), Stream::Other { video: true, .. }));
        let parsed = |name: &str| parsed_stream(&gst::Structure::new_empty(name));
        assert_eq!(parsed("video/x-h265"), Stream::Video(Video::H265));
        assert!(matches!(parsed("video/mpeg"), Stream::Other { video: true, .. }));
        assert!(matches!(parsed("audio/x-alaw"), Stream::Audio(a) if a.transcoded));
    }
}
