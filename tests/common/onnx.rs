//! Small ONNX models written by the tests themselves, to feed the element models that load but
//! break a contract: outputs of the wrong size, a batch collapsed to one, NaN answers.
//!
//! An ONNX file is a protobuf `ModelProto`; the few messages needed are encoded by hand here
//! (field numbers from onnx.proto), which keeps the tests free of Python and of a protobuf crate.
#![allow(dead_code)]

/// A protobuf message under construction.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u32, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn packed_ints(self, field: u32, v: &[i64]) -> Self {
        let mut p = Msg::default();
        for &x in v {
            p.varint(x as u64);
        }
        self.bytes(field, &p.0)
    }
}

const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// A tensor shape: `None` for the dynamic batch dimension.
fn value_info(name: &str, dims: &[Option<i64>]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let dim = match d {
            Some(v) => Msg::default().int(1, *v),
            None => Msg::default().str(2, "N"),
        };
        shape = shape.msg(1, dim);
    }
    let tensor = Msg::default().int(1, FLOAT).msg(2, shape);
    Msg::default().str(1, name).msg(2, Msg::default().msg(1, tensor))
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> Msg {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Msg::default()
        .packed_ints(1, dims)
        .int(2, FLOAT)
        .str(8, name)
        .bytes(9, &raw)
}

fn int_tensor(name: &str, values: &[i64]) -> Msg {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Msg::default()
        .packed_ints(1, &[values.len() as i64])
        .int(2, INT64)
        .str(8, name)
        .bytes(9, &raw)
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Msg>) -> Msg {
    let mut n = Msg::default();
    for i in inputs {
        n = n.str(1, i);
    }
    for o in outputs {
        n = n.str(2, o);
    }
    n = n.str(3, &format!("{op}_{}", outputs[0])).str(4, op);
    for a in attrs {
        n = n.msg(5, a);
    }
    n
}

fn ints_attr(name: &str, v: &[i64]) -> Msg {
    // AttributeProto: name 1, ints 8, type 20 (INTS = 7).
    Msg::default().str(1, name).packed_ints(8, v).int(20, 7)
}

fn int_attr(name: &str, v: i64) -> Msg {
    // AttributeProto: name 1, i 3, type 20 (INT = 2).
    Msg::default().str(1, name).int(3, v).int(20, 2)
}

/// How an output is made from the input.
#[derive(Clone, Copy, PartialEq)]
pub enum Fault {
    /// Finite values depending on the input (a working model of the right shape).
    None,
    /// The batch collapsed: one answer whatever the batch size.
    OneForAll,
    /// NaN whatever the input.
    NaN,
    /// Finite on the all-zero input a load check would try, NaN on real pictures.
    NaNOnPictures,
}

/// One output: its name, its values per batch item (`shape` after the batch dimension), and how
/// it is computed.
pub struct Output<'a> {
    pub name: &'a str,
    pub shape: &'a [i64],
    pub fault: Fault,
}

/// A model with one input `input` of `input` (first dimension `None`: a dynamic batch) and the
/// given outputs, each a linear function of the input's mean.
pub fn model(input: &[Option<i64>], outputs: &[Output]) -> Vec<u8> {
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let axes: Vec<i64> = (1..input.len() as i64).collect();
    nodes.push(node(
        "ReduceMean",
        &["input"],
        &["mean"],
        vec![ints_attr("axes", &axes), int_attr("keepdims", 1)],
    ));
    nodes.push(node(
        "ReduceMean",
        &["input"],
        &["mean_all"],
        vec![
            ints_attr("axes", &(0..input.len() as i64).collect::<Vec<_>>()),
            int_attr("keepdims", 1),
        ],
    ));
    inits.push(int_tensor("col", &[-1, 1]));
    nodes.push(node("Reshape", &["mean", "col"], &["feature"], vec![]));
    nodes.push(node("Reshape", &["mean_all", "col"], &["feature_all"], vec![]));
    // sqrt(-|x|): 0 for the all-zero input, NaN for anything else.
    nodes.push(node("Abs", &["feature"], &["abs"], vec![]));
    nodes.push(node("Neg", &["abs"], &["neg"], vec![]));
    nodes.push(node("Sqrt", &["neg"], &["nan_unless_zero"], vec![]));
    let mut outs = Vec::new();
    for o in outputs {
        let k: i64 = o.shape.iter().product();
        let w: Vec<f32> = (0..k).map(|i| 0.01 * (i % 7) as f32 - 0.02).collect();
        let b: Vec<f32> = (0..k)
            .map(|i| {
                if o.fault == Fault::NaN {
                    f32::NAN
                } else {
                    0.1 + 0.05 * (i % 5) as f32
                }
            })
            .collect();
        let (wn, bn, mm, flat, shape_name) = (
            format!("{}_w", o.name),
            format!("{}_b", o.name),
            format!("{}_mm", o.name),
            format!("{}_flat", o.name),
            format!("{}_shape", o.name),
        );
        inits.push(float_tensor(&wn, &[1, k], &w));
        inits.push(float_tensor(&bn, &[k], &b));
        let from = match o.fault {
            Fault::OneForAll => "feature_all",
            Fault::NaNOnPictures => "nan_unless_zero",
            _ => "feature",
        };
        nodes.push(node("MatMul", &[from, &wn], &[&mm], vec![]));
        nodes.push(node("Add", &[&mm, &bn], &[&flat], vec![]));
        let mut shape = vec![-1];
        shape.extend_from_slice(o.shape);
        inits.push(int_tensor(&shape_name, &shape));
        nodes.push(node("Reshape", &[&flat, &shape_name], &[o.name], vec![]));
        let mut dims = vec![None];
        dims.extend(o.shape.iter().map(|&d| Some(d)));
        if o.fault == Fault::OneForAll {
            dims[0] = Some(1);
        }
        outs.push(value_info(o.name, &dims));
    }
    let mut graph = Msg::default().str(2, "faceemotion-test");
    for n in nodes {
        graph = graph.msg(1, n);
    }
    for i in inits {
        graph = graph.msg(5, i);
    }
    graph = graph.msg(11, value_info("input", input));
    for o in outs {
        graph = graph.msg(12, o);
    }
    Msg::default()
        .int(1, 7)
        .str(2, "faceemotion-tests")
        .msg(8, Msg::default().str(1, "").int(2, 13))
        .msg(7, graph)
        .0
}

/// Writes a model into the test's scratch folder and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("faceemotion-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The mini-Xception emotion contract: [N,64,64,1] in, `predictions` [N,7] out.
pub fn emotion(fault: Fault, classes: i64, input_batch: Option<i64>) -> Vec<u8> {
    model(
        &[input_batch, Some(64), Some(64), Some(1)],
        &[Output {
            name: "predictions",
            shape: &[classes],
            fault,
        }],
    )
}

/// The face-api.js age/gender contract: [N,112,112,3] in, `gender` [N,2] and `age` [N,1] out.
pub fn gender(gender_fault: Fault, age_fault: Fault) -> Vec<u8> {
    model(
        &[None, Some(112), Some(112), Some(3)],
        &[
            Output {
                name: "gender",
                shape: &[2],
                fault: gender_fault,
            },
            Output {
                name: "age",
                shape: &[1],
                fault: age_fault,
            },
        ],
    )
}

/// The BlazeFace full-range contract: [1,192,192,3] in, regressors [1,2304,16] and scores
/// [1,2304,1] out; `anchors` other than 2304 break it.
pub fn detector(anchors: i64, scores: Fault) -> Vec<u8> {
    model(
        &[Some(1), Some(192), Some(192), Some(3)],
        &[
            Output {
                name: "reshaped_regressor_face_4",
                shape: &[anchors, 16],
                fault: Fault::None,
            },
            Output {
                name: "reshaped_classifier_face_4",
                shape: &[2304, 1],
                fault: scores,
            },
        ],
    )
}

/// The face descriptor contract: [N,224,224,3] in, `descriptor` [N,dims] out.
pub fn descriptor(fault: Fault, dims: i64) -> Vec<u8> {
    model(
        &[None, Some(224), Some(224), Some(3)],
        &[Output {
            name: "descriptor",
            shape: &[dims],
            fault,
        }],
    )
}
