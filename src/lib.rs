//! faceemotion: a GStreamer element that finds faces in raw video, classifies their emotion and
//! gender, attaches the results as region-of-interest metadata and draws them.
//!
//! The core knows nothing of GStreamer: shared types ([`face`]), frames ([`image`], [`resample`]),
//! the models ([`runtime`], [`detector`], [`classifier`], [`analysis`]), people over time
//! ([`tracker`], [`person`], [`stream`]), the picture ([`draw`], [`mask`]), record outputs
//! ([`publish`]) and the footage report ([`report`]). The elements are [`faceemotion`] and
//! [`faceemotionpublish`]; `src/bin/faceemotion` is the command-line program built on them.
#![allow(clippy::too_many_arguments)]

use gst::glib;

pub mod analysis;
pub mod classifier;
pub mod descriptor;
pub mod detector;
pub mod draw;
pub mod face;
pub mod faceemotion;
pub mod faceemotionpublish;
pub mod image;
pub mod mask;
pub mod person;
pub mod pool;
pub mod publish;
pub mod registry;
pub mod report;
pub mod resample;
pub mod runtime;
pub mod scan;
pub mod schema;
pub mod stream;
pub mod timing;
pub mod tracker;
pub mod visitor;
pub mod walltime;
pub mod zone;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    faceemotion::register(plugin)?;
    faceemotionpublish::register(plugin)
}

gst::plugin_define!(
    faceemotion,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // No public home yet. GStreamer refuses an empty origin, so this is what its own builds
    // say when none is configured, rather than a placeholder URL.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
