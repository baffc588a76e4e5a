//! The ONNX Runtime library cannot be found or is not a library: the element says which variable
//! to set and which command installs it. (Its own test binary: the runtime loads once per process.)

mod common;

use common::*;

#[test]
fn missing_or_wrong_runtime_library_names_the_fix() {
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1") };
    let (_, err) = run_pipeline("videotestsrc num-buffers=1 ! faceemotion ! fakesink");
    let err = err.expect("an error when the runtime is missing");
    assert!(err.contains("/nonexistent/libonnxruntime.so.1.31.1"), "{err}");
    assert!(
        err.contains("ORT_DYLIB_PATH") && err.contains("scripts/setup.sh"),
        "{err}"
    );

    // The property wins over the variable; a file that is not the library is refused by name.
    let not_a_library = format!("{}/models/hm_gender.onnx", env!("CARGO_MANIFEST_DIR"));
    let (_, err) = run_pipeline(&format!(
        "videotestsrc num-buffers=1 ! faceemotion ort-library={not_a_library} ! fakesink"
    ));
    let err = err.expect("an error when the runtime is not a library");
    assert!(err.contains(&not_a_library) && err.contains("could not load"), "{err}");
}
