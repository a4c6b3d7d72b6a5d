//! The convolution kernels' barrier-free variant ("register"), and the choice between it and
//! the workgroup-memory tiles of `shaders/conv_gemm.wgsl` ("tiled").
//!
//! Each kernel is the same implicit GEMM as its tiled twin (same `Params`, same bindings, same
//! result up to the order of a sum), generated here so its register block is unrolled:
//! - every workgroup owns `rows` rows of C (output channels, or input channels for the input
//!   gradient), shared by all its invocations, so each A value (a weight, or a dy value of the
//!   weight gradient) is at a workgroup-uniform address: one load serves a whole SIMD group;
//! - every invocation owns `4·vec_cols` consecutive columns of C and keeps its `rows` ×
//!   `4·vec_cols` block in `vec4` registers; each gathered B value (x or dy, zero in the
//!   padding) feeds `rows` multiply-adds;
//! - the reduction walks the tensors' own loops (tap row, tap column, then channel innermost; or
//!   output row, output column, then sample), so no index is divided inside it and each
//!   column's bounds test is made once per tap, and it runs in one fixed order
//!   (deterministic, as the tiled kernels are).
//!
//! No workgroup memory, no barriers, no subgroup operations: it runs on every adapter. On
//! llvmpipe/lavapipe, where a barrier switches coroutines and every per-invocation load is a
//! scalar loop over the SIMD lanes, that is what pays; on a GPU with fast shared memory the tiled
//! kernels may win.
//!
//! The `Subgroup` variant is the same kernel with one change: the `rows` A values of a step are
//! not loaded by every invocation; lane l of each subgroup loads rows l, l + 8, … and
//! `subgroupBroadcast` hands each row's value to all lanes (`rows / 8` loads instead of `rows`).
//! On lavapipe those uniform-address loads were the bottleneck (each is a scalar load per SIMD
//! lane); it runs about twice as fast there, with the same sums in the same order. It needs
//! subgroups of at least SUBGROUP_LANES. `gpu::autotune` times every variant the adapter can
//! run per class of convolution and adapter.

use super::autotune::Variant;
use crate::kernels::conv::{ConvInputGradParams, ConvParams, ConvWeightsParams};
use crate::kernels::{ACTIVATION_FNS, Params, ParamsLayout};

/// Which convolution kernel a backend records for a class of convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvChoice {
    Tiled,
    Register,
    /// `Register` with each row's A value loaded once per subgroup and handed around with
    /// `subgroupBroadcast`; needs subgroups of at least `SUBGROUP_LANES` invocations.
    Subgroup,
}

impl ConvChoice {
    pub const ALL: [ConvChoice; 3] = [
        ConvChoice::Tiled,
        ConvChoice::Register,
        ConvChoice::Subgroup,
    ];
}

/// Lanes of a subgroup the `Subgroup` kernels use: lane l loads rows l, l + 8, … of the block.
/// The GPU backend enables subgroups only where the adapter's smallest subgroup has at least 8.
pub const SUBGROUP_LANES: u32 = 8;

impl Variant for ConvChoice {
    const ALL: &'static [Self] = &ConvChoice::ALL;
    const ENV: &'static str = "DUEL_CONV";

    fn name(self) -> &'static str {
        match self {
            ConvChoice::Tiled => "tiled",
            ConvChoice::Register => "register",
            ConvChoice::Subgroup => "subgroup",
        }
    }

    fn needs_subgroups(self) -> bool {
        self == ConvChoice::Subgroup
    }

    fn classes() -> Vec<String> {
        ConvClass::all().map(|c| c.name().to_string()).collect()
    }
}

/// The three convolution products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvKind {
    Forward,
    InputGrad,
    WeightGrad,
}

impl ConvKind {
    pub const ALL: [ConvKind; 3] = [ConvKind::Forward, ConvKind::InputGrad, ConvKind::WeightGrad];

    /// The tiled kernel's name (the entry point of its WGSL file).
    pub fn tiled_name(self) -> &'static str {
        match self {
            ConvKind::Forward => "conv2d_forward",
            ConvKind::InputGrad => "conv2d_backward_input",
            ConvKind::WeightGrad => "conv2d_backward_weights",
        }
    }

    /// The entry point of the kernel generated for `choice` (`Register` or `Subgroup`).
    pub fn entry(self, choice: ConvChoice) -> &'static str {
        let subgroup = choice == ConvChoice::Subgroup;
        match (self, subgroup) {
            (ConvKind::Forward, false) => "conv2d_forward_register",
            (ConvKind::InputGrad, false) => "conv2d_backward_input_register",
            (ConvKind::WeightGrad, false) => "conv2d_backward_weights_register",
            (ConvKind::Forward, true) => "conv2d_forward_subgroup",
            (ConvKind::InputGrad, true) => "conv2d_backward_input_subgroup",
            (ConvKind::WeightGrad, true) => "conv2d_backward_weights_subgroup",
        }
    }

    fn layout(self) -> &'static ParamsLayout {
        match self {
            ConvKind::Forward => &<ConvParams as Params>::LAYOUT,
            ConvKind::InputGrad => &<ConvInputGradParams as Params>::LAYOUT,
            ConvKind::WeightGrad => &<ConvWeightsParams as Params>::LAYOUT,
        }
    }
}

/// A class of convolution, timed and chosen as one: the product, and whether its rows (output
/// channels; input channels for the input gradient) fit a narrow block of `NARROW_ROWS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvClass {
    pub kind: ConvKind,
    pub narrow: bool,
}

impl ConvClass {
    /// Its name in plans and the cache file (made per recorded convolution: no allocation).
    pub fn name(self) -> &'static str {
        match (self.kind, self.narrow) {
            (ConvKind::Forward, false) => "conv_forward",
            (ConvKind::Forward, true) => "conv_forward_narrow",
            (ConvKind::InputGrad, false) => "conv_backward_input",
            (ConvKind::InputGrad, true) => "conv_backward_input_narrow",
            (ConvKind::WeightGrad, false) => "conv_backward_weights",
            (ConvKind::WeightGrad, true) => "conv_backward_weights_narrow",
        }
    }

    pub fn all() -> impl Iterator<Item = ConvClass> {
        ConvKind::ALL.into_iter().flat_map(|kind| {
            [false, true]
                .into_iter()
                .map(move |narrow| ConvClass { kind, narrow })
        })
    }

    /// The tile this class's generated kernel uses: `WIDE` and `NARROW`, or
    /// `DUEL_CONV_TILE` and `DUEL_CONV_TILE_NARROW` (`rows,vec_cols,workgroup`) for experiments,
    /// read once per process, so the compiled kernel and the workgroups recorded for it (every
    /// convolution dispatch of every step) always agree.
    pub fn tile(self) -> ConvTile {
        static TILES: std::sync::OnceLock<(ConvTile, ConvTile)> = std::sync::OnceLock::new();
        let (wide, narrow) = *TILES.get_or_init(|| {
            (
                ConvTile::parse_env("DUEL_CONV_TILE").unwrap_or(ConvTile::WIDE),
                ConvTile::parse_env("DUEL_CONV_TILE_NARROW").unwrap_or(ConvTile::NARROW),
            )
        });
        if self.narrow { narrow } else { wide }
    }
}

/// Products with at most this many rows run the narrow block (an image layer's 1–4 channels).
pub const NARROW_ROWS: usize = 4;

/// The register block: rows of C per workgroup (every invocation's), vec4 column groups per
/// invocation, invocations per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTile {
    pub rows: u32,
    pub vec_cols: u32,
    pub workgroup: u32,
}

impl ConvTile {
    /// 32 rows × 8 columns per invocation, 16 invocations. On lavapipe a 32 × 16 block
    /// (`DUEL_CONV_TILE=32,4,16`) runs about 30% faster, but SwiftShader's shader compiler needs
    /// 4.4 GB to compile a kernel with 16 columns per invocation (1.4 GB with 8), and a test
    /// process that builds a few devices was killed for memory at 24 GB; lavapipe's compiler
    /// also takes twice as long. So the default keeps 8 columns (docs/performance.md).
    pub const WIDE: ConvTile = ConvTile {
        rows: 32,
        vec_cols: 2,
        workgroup: 16,
    };
    /// 4 rows × 8 columns, 16 invocations (`DUEL_CONV_TILE_NARROW`); 16 columns were a little
    /// faster for the narrow input gradient on lavapipe, with the same compile cost as above.
    pub const NARROW: ConvTile = ConvTile {
        rows: NARROW_ROWS as u32,
        vec_cols: 2,
        workgroup: 16,
    };

    /// Columns of C per invocation.
    pub fn cols(self) -> u32 {
        4 * self.vec_cols
    }

    /// Columns of C per workgroup.
    pub fn tile_n(self) -> u32 {
        self.workgroup * self.cols()
    }

    fn parse_env(var: &str) -> Option<ConvTile> {
        let v = std::env::var(var).ok()?;
        let p: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match p[..] {
            [rows, vec_cols, workgroup]
                if (1..=64).contains(&rows)
                    && (1..=8).contains(&vec_cols)
                    && (1..=256).contains(&workgroup) =>
            {
                Some(ConvTile {
                    rows,
                    vec_cols,
                    workgroup,
                })
            }
            _ => None,
        }
    }
}

/// Workgroups of the generated kernel for `class` over the parameter block `params`.
pub fn workgroups(class: ConvClass, params: &[u8]) -> [u32; 3] {
    use crate::kernels::cast;
    let t = class.tile();
    let x = |cols: usize| (cols as u32).div_ceil(t.tile_n()).max(1);
    let y = |rows: usize| (rows as u32).div_ceil(t.rows).max(1);
    match class.kind {
        ConvKind::Forward => {
            let g = cast::<ConvParams>(params).geom();
            [x(g.n * g.ohw()), y(g.co), 1]
        }
        ConvKind::InputGrad => {
            let g = cast::<ConvInputGradParams>(params).geom();
            let s = g.stride;
            let phase_pixels = g.n * g.h.div_ceil(s) * g.w.div_ceil(s);
            [x(phase_pixels), y(g.ci), (s * s) as u32]
        }
        ConvKind::WeightGrad => {
            let p = cast::<ConvWeightsParams>(params);
            let g = p.geom();
            [x(g.taps()), y(g.co), p.splits.max(1)]
        }
    }
}

/// The class of a launch of the tiled kernel `name` with `params`, if it is a convolution.
pub fn class_of(name: &str, params: &[u8]) -> Option<ConvClass> {
    use crate::kernels::cast;
    let kind = ConvKind::ALL.into_iter().find(|k| k.tiled_name() == name)?;
    let rows = match kind {
        ConvKind::Forward => cast::<ConvParams>(params).co,
        ConvKind::InputGrad => cast::<ConvInputGradParams>(params).ci,
        ConvKind::WeightGrad => cast::<ConvWeightsParams>(params).co,
    } as usize;
    Some(ConvClass {
        kind,
        narrow: rows <= NARROW_ROWS,
    })
}

/// Builds WGSL line by line.
pub(super) struct Src(pub String);

impl Src {
    pub fn line(&mut self, t: impl AsRef<str>) {
        self.0.push_str(t.as_ref());
        self.0.push('\n');
    }
}

/// The WGSL `Params` struct of a layout (every field u32 but `alpha`).
pub(super) fn params_struct(layout: &ParamsLayout) -> String {
    let fields: Vec<String> = layout
        .fields
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f.name,
                if f.name == "alpha" { "f32" } else { "u32" }
            )
        })
        .collect();
    format!("struct Params {{ {} }}", fields.join(", "))
}

/// WGSL of the kernel generated for one class and `choice` (`Register` or `Subgroup`; entry
/// point `class.kind.entry(choice)`).
pub fn register_source(class: ConvClass, choice: ConvChoice) -> String {
    let t = class.tile();
    let kind = class.kind;
    let entry = kind.entry(choice);
    let subgroup = choice == ConvChoice::Subgroup;
    let (rm, cv, nc) = (t.rows, t.vec_cols, t.cols());
    let mut s = Src(String::new());
    s.line(format!(
        "// Generated by src/gpu/conv_register.rs: {entry} (barrier-free), {rm} rows × {nc} \
         columns per invocation, {} invocations.",
        t.workgroup
    ));
    s.line(ACTIVATION_FNS.text());
    s.line(crate::kernels::conv::EPILOGUE.text());
    s.line(params_struct(kind.layout()));
    s.line("@group(0) @binding(0) var<uniform> p: Params;");
    let names = match kind {
        ConvKind::Forward => ["x", "weight", "bias", "y"].as_slice(),
        ConvKind::InputGrad => ["dy", "weight", "bias", "dx"].as_slice(),
        ConvKind::WeightGrad => ["x", "dy", "dw"].as_slice(),
    };
    for (i, n) in names.iter().enumerate() {
        let access = if i + 1 == names.len() {
            "read_write"
        } else {
            "read"
        };
        s.line(format!(
            "@group(0) @binding({}) var<storage, {access}> {n}: array<f32>;",
            i + 1
        ));
    }
    s.line("fn out_h() -> u32 { return (p.h + 2u * p.pad - p.kh) / p.stride + 1u; }");
    s.line("fn out_w() -> u32 { return (p.w + 2u * p.pad - p.kw) / p.stride + 1u; }");
    if kind != ConvKind::WeightGrad {
        s.line(
            "fn store_extra(o: u32, c: u32) -> f32 {\n  if (p.flags & 8u) != 0u { return \
             bias[p.bias_off + o]; }\n  if (p.flags & 1u) != 0u { return bias[p.bias_off + c]; \
             }\n  return 0.0;\n}",
        );
    }
    if kind == ConvKind::InputGrad {
        // As conv2d_backward_input.wgsl: one phase along one axis.
        s.line(
            "struct Phase { first: u32, count: u32, r: u32, taps: u32, q0: u32 }\n\
             fn phase(r: u32, size: u32, k: u32) -> Phase {\n  let s = p.stride;\n  \
             let first = (r + s - p.pad % s) % s;\n  var ph: Phase;\n  ph.first = first;\n  \
             ph.count = select(0u, (size - first + s - 1u) / s, first < size);\n  ph.r = r;\n  \
             ph.taps = select(0u, (k - r + s - 1u) / s, r < k);\n  \
             ph.q0 = (first + p.pad - r) / s;\n  return ph;\n}",
        );
    }
    let lane = if subgroup {
        ", @builtin(subgroup_invocation_id) sl: u32"
    } else {
        ""
    };
    s.line(format!(
        "@compute @workgroup_size({})\nfn {entry}(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_index) li: u32{lane}) {{",
        t.workgroup
    ));
    s.line(format!("  let row0 = wg.y * {rm}u;"));
    s.line(format!(
        "  let col0 = (wg.x * {}u + li) * {nc}u;",
        t.workgroup
    ));
    s.line("  let ohn = out_h(); let own = out_w(); let ohw = ohn * own;");
    s.line("  let hw = p.h * p.w; let khw = p.kh * p.kw;");
    // The kind's columns (N, and what each column's gather needs).
    match kind {
        ConvKind::Forward => {
            s.line("  let n_cols = p.n * ohw; let k_len = p.ci * khw;");
            s.line("  if n_cols == 0u { return; }");
            for j in 0..nc {
                s.line(format!(
                    "  let c{j} = min(col0 + {j}u, n_cols - 1u); let s{j} = c{j} / ohw; \
                     let px{j} = c{j} % ohw;\n  let ih{j} = i32((px{j} / own) * p.stride) - \
                     i32(p.pad); let iw{j} = i32((px{j} % own) * p.stride) - i32(p.pad);\n  \
                     let xb{j} = i32(p.x_off + s{j} * p.ci * hw);"
                ));
            }
        }
        ConvKind::InputGrad => {
            s.line("  let phh = phase(wg.z / p.stride, p.h, p.kh);");
            s.line("  let phw = phase(wg.z % p.stride, p.w, p.kw);");
            s.line("  let pix = phh.count * phw.count; let n_cols = p.n * pix;");
            s.line("  if n_cols == 0u { return; }");
            for j in 0..nc {
                s.line(format!(
                    "  let c{j} = min(col0 + {j}u, n_cols - 1u); let s{j} = c{j} / pix; \
                     let q{j} = c{j} % pix;\n  let oy{j} = i32(phh.q0 + q{j} / phw.count); \
                     let ox{j} = i32(phw.q0 + q{j} % phw.count);\n  \
                     let db{j} = i32(p.dy_off + s{j} * p.co * ohw);"
                ));
            }
        }
        ConvKind::WeightGrad => {
            s.line("  let per = (p.n + p.splits - 1u) / p.splits;");
            s.line("  let s_lo = min(p.n, wg.z * per); let s_hi = min(p.n, (wg.z + 1u) * per);");
            s.line("  let n_cols = p.ci * khw;");
            for j in 0..nc {
                s.line(format!(
                    "  let c{j} = min(col0 + {j}u, n_cols - 1u); let t{j} = c{j} % khw;\n  \
                     let ky{j} = i32(t{j} / p.kw) - i32(p.pad); let kx{j} = i32(t{j} % p.kw) - \
                     i32(p.pad);\n  let xb{j} = i32(p.x_off + (c{j} / khw) * hw);"
                ));
            }
        }
    }
    // A's row bases, each row clamped into the matrix (rows past it compute garbage that is
    // never stored): one per row, or with `Subgroup` one per group of SUBGROUP_LANES rows, lane
    // l's for row l of the group.
    let a_row = |row: String| match kind {
        ConvKind::Forward => format!("p.weight_off + min({row}, p.co - 1u) * k_len"),
        ConvKind::InputGrad => format!("p.weight_off + min({row}, p.ci - 1u) * khw"),
        ConvKind::WeightGrad => format!("p.dy_off + min({row}, p.co - 1u) * ohw"),
    };
    let groups = rm.div_ceil(SUBGROUP_LANES);
    for i in 0..if subgroup { groups } else { rm } {
        let row = match subgroup {
            true => format!("row0 + {}u + sl % {SUBGROUP_LANES}u", i * SUBGROUP_LANES),
            false => format!("row0 + {i}u"),
        };
        s.line(format!("  let ar{i} = {};", a_row(row)));
    }
    for r in 0..rm {
        for q in 0..cv {
            s.line(format!("  var acc{r}_{q} = vec4<f32>(0.0);"));
        }
    }
    // The reduction: two outer loops over the kernel's taps (or the output pixels of the
    // weight gradient), where each column's bounds test and address are worked out once, then
    // the innermost loop over the channels (samples) only adds a uniform stride to them.
    // `src` is the gathered tensor, `fallback` a valid index of it.
    let (src, fallback) = match kind {
        ConvKind::Forward | ConvKind::WeightGrad => ("x", "p.x_off"),
        ConvKind::InputGrad => ("dy", "p.dy_off"),
    };
    let a_src = match kind {
        ConvKind::WeightGrad => "dy",
        _ => "weight",
    };
    // (outer loop, middle loop, row test per column, column test per column, the A offset of
    // the tap, innermost loop, its B and A strides)
    let rows_ok = |s: &mut Src, h: &str, limit: &str| {
        for j in 0..nc {
            s.line(format!(
                "      let h{j} = {}; let hok{j} = h{j} >= 0 && h{j} < i32({limit});",
                h.replace("{j}", &j.to_string())
            ));
        }
    };
    let cols_ok = |s: &mut Src, w: &str, limit: &str, base: &str| {
        for j in 0..nc {
            let js = j.to_string();
            s.line(format!(
                "        let w{j} = {}; let ok{j} = hok{j} && w{j} >= 0 && w{j} < i32({limit}); \
                 let bi{j} = u32(select(i32({fallback}), {}, ok{j}));",
                w.replace("{j}", &js),
                base.replace("{j}", &js)
            ));
        }
    };
    match kind {
        ConvKind::Forward => {
            s.line("  for (var ky = 0u; ky < p.kh; ky++) {");
            rows_ok(&mut s, "ih{j} + i32(ky)", "p.h");
            s.line("    for (var kx = 0u; kx < p.kw; kx++) {");
            cols_ok(
                &mut s,
                "iw{j} + i32(kx)",
                "p.w",
                "xb{j} + h{j} * i32(p.w) + w{j}",
            );
            s.line("        let ak = ky * p.kw + kx;");
            s.line("        for (var c = 0u; c < p.ci; c++) {");
            s.line("          let bo = c * hw; let ao = c * khw + ak;");
        }
        ConvKind::InputGrad => {
            s.line("  for (var ty = 0u; ty < phh.taps; ty++) {");
            s.line("    let ky = phh.r + p.stride * ty;");
            rows_ok(&mut s, "oy{j} - i32(ty)", "ohn");
            s.line("    for (var tx = 0u; tx < phw.taps; tx++) {");
            cols_ok(
                &mut s,
                "ox{j} - i32(tx)",
                "own",
                "db{j} + h{j} * i32(own) + w{j}",
            );
            s.line("        let ak = ky * p.kw + phw.r + p.stride * tx;");
            s.line("        for (var co = 0u; co < p.co; co++) {");
            s.line("          let bo = co * ohw; let ao = co * p.ci * khw + ak;");
        }
        ConvKind::WeightGrad => {
            s.line("  for (var oy = 0u; oy < ohn; oy++) {");
            rows_ok(&mut s, "i32(oy * p.stride) + ky{j}", "p.h");
            s.line("    for (var ox = 0u; ox < own; ox++) {");
            cols_ok(
                &mut s,
                "i32(ox * p.stride) + kx{j}",
                "p.w",
                "xb{j} + h{j} * i32(p.w) + w{j}",
            );
            s.line("        let ak = oy * own + ox;");
            s.line("        for (var sm = s_lo; sm < s_hi; sm++) {");
            s.line("          let bo = sm * p.ci * hw; let ao = sm * p.co * ohw + ak;");
        }
    }
    for j in 0..nc {
        s.line(format!(
            "          let v{j} = select(0.0, {src}[bi{j} + bo], ok{j});"
        ));
    }
    for q in 0..cv {
        let v = |e: u32| format!("v{}", 4 * q + e);
        s.line(format!(
            "          let b{q} = vec4<f32>({}, {}, {}, {});",
            v(0),
            v(1),
            v(2),
            v(3)
        ));
    }
    if subgroup {
        for g in 0..groups {
            s.line(format!("          let al{g} = {a_src}[ar{g} + ao];"));
        }
    }
    for r in 0..rm {
        let a = match subgroup {
            true => format!(
                "subgroupBroadcast(al{}, {}u)",
                r / SUBGROUP_LANES,
                r % SUBGROUP_LANES
            ),
            false => format!("{a_src}[ar{r} + ao]"),
        };
        s.line(format!("          let a{r} = vec4<f32>({a});"));
        for q in 0..cv {
            s.line(format!(
                "          acc{r}_{q} = fma(a{r}, b{q}, acc{r}_{q});"
            ));
        }
    }
    s.line("        }\n    }\n  }");
    // The store step: the block goes to a private array, and runtime loops over its columns and
    // rows store it, so the epilogue (activation, bias) is generated once rather than once per
    // output of the block (a shader a fraction of the size).
    let rows_n = match kind {
        ConvKind::InputGrad => "p.ci",
        _ => "p.co",
    };
    s.line(format!("  var block: array<vec4<f32>, {}>;", rm * cv));
    for r in 0..rm {
        for q in 0..cv {
            s.line(format!("  block[{}] = acc{r}_{q};", r * cv + q));
        }
    }
    s.line(format!("  for (var j = 0u; j < {nc}u; j++) {{"));
    s.line("    let c = col0 + j;");
    s.line("    if c >= n_cols { break; }");
    s.line(match kind {
        ConvKind::Forward => "    let ob = (c / ohw) * p.co * ohw + c % ohw;",
        ConvKind::InputGrad => {
            "    let q = c % pix;\n    let ih = phh.first + p.stride * (q / phw.count);\n    \
             let iw = phw.first + p.stride * (q % phw.count);\n    \
             let ob = (c / pix) * p.ci * hw + ih * p.w + iw;"
        }
        ConvKind::WeightGrad => "    let ob = p.dw_off + wg.z * p.co * n_cols + c;",
    });
    s.line(format!("    for (var r = 0u; r < {rm}u; r++) {{"));
    s.line("      let row = row0 + r;");
    s.line(format!("      if row >= {rows_n} {{ break; }}"));
    s.line(format!("      let v = block[r * {cv}u + j / 4u][j % 4u];"));
    s.line(match kind {
        ConvKind::Forward => {
            "      let o = ob + row * ohw;\n      \
             y[p.y_off + o] = conv_epilogue(p.flags, p.act, p.alpha, v, store_extra(o, row));"
        }
        ConvKind::InputGrad => {
            "      let o = ob + row * hw;\n      \
             dx[p.dx_off + o] = conv_epilogue(p.flags, p.act, p.alpha, v, store_extra(o, row));"
        }
        ConvKind::WeightGrad => {
            "      let o = ob + row * n_cols;\n      var w = v;\n      \
             if p.accumulate != 0u && p.splits == 1u { w += dw[o]; }\n      dw[o] = w;"
        }
    });
    s.line("    }");
    s.line("  }");
    s.line("}");
    s.0
}
