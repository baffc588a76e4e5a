//! The `faceemotionpublish` element: frame and track-event records, as JSON, to a file or an
//! MQTT broker.

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod json;

pub use imp::{Format, Method};

glib::wrapper! {
    pub struct FaceEmotionPublish(ObjectSubclass<imp::FaceEmotionPublish>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "faceemotionpublish",
        gst::Rank::NONE,
        FaceEmotionPublish::static_type(),
    )
}
