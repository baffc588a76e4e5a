//! The `faceemotion` element.

use gst::glib;
use gst::prelude::*;

mod frame;
mod imp;
pub mod meta;
mod phase;
mod post;
mod settings;

pub use settings::{Blur, DetectorChoice, Pipelining};

glib::wrapper! {
    pub struct FaceEmotion(ObjectSubclass<imp::FaceEmotion>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "faceemotion", gst::Rank::NONE, FaceEmotion::static_type())
}
