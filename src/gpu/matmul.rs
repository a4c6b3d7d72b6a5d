//! Matmul kernel variants and the choice between them.
//!
//! Two kernels compute the same product (see `shaders/matmul.wgsl` for the contract):
//! - `Tiled`: `shaders/matmul.wgsl`, 64×64 tiles staged through workgroup memory, two barriers
//!   per 16-deep K step. Works for every layout and shape; the usual shape for a real GPU.
//! - `Subgroup`: generated here (`subgroup_source`), barrier-free. Every invocation keeps an
//!   R×(4·CV) block of C in registers; all invocations of a workgroup share the same R rows, so
//!   the A values are loaded once per subgroup (each lane loads a different K slice) and handed
//!   around with `subgroupBroadcast`, and B is read as `vec4`. On llvmpipe/lavapipe, where every
//!   per-invocation load is a scalar loop over the 8 SIMD lanes and barriers switch coroutines,
//!   this runs ~8× faster than `Tiled`. It needs 16-byte aligned views (offsets and strides
//!   multiples of 4, the vectorised dimensions multiples of 4); other products fall back to
//!   `Tiled`.
//!
//! Which one a backend uses for each class of product is decided by timing both once per
//! adapter and driver (`gpu::autotune`, remembered across runs) unless `DUEL_MATMUL=tiled|subgroup`
//! says otherwise.

use crate::backend::MatView;

/// Which matmul kernel a backend records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulChoice {
    Tiled,
    Subgroup,
}

impl MatmulChoice {
    pub fn name(self) -> &'static str {
        match self {
            MatmulChoice::Tiled => "tiled",
            MatmulChoice::Subgroup => "subgroup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_lowercase().as_str() {
            "tiled" => Some(MatmulChoice::Tiled),
            "subgroup" | "sg" => Some(MatmulChoice::Subgroup),
            _ => None,
        }
    }
}

/// How the subgroup kernel reads A: 4 consecutive K values of a row (`a_cs == 1`, the forward
/// and backward-input products) or 4 consecutive rows at one K (`a_rs == 1`, backward-weights).
/// How it reads B: 4 consecutive columns at one K (`b_cs == 1`) or 4 consecutive K values of one
/// column (`b_rs == 1`, backward-input's Wᵀ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgLayout {
    pub a_k_fast: bool,
    pub b_n_fast: bool,
}

/// The subgroup kernel's tile: rows of C per workgroup (shared by all its invocations), vec4
/// column groups per invocation, invocations per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SgTile {
    pub rows: u32,
    pub vec_cols: u32,
    pub workgroup: u32,
}

impl SgTile {
    /// Columns of C per workgroup.
    pub fn tile_n(self) -> u32 {
        self.workgroup * 4 * self.vec_cols
    }

    /// 16 rows × 8 columns per invocation, 16 invocations: the best of the shapes tried on
    /// lavapipe (8–32 rows, 4–16 columns, 16–64 invocations). `DUEL_SG_TILE=rows,vec_cols,
    /// workgroup` overrides it for experiments.
    pub fn from_env() -> SgTile {
        let default = SgTile {
            rows: 16,
            vec_cols: 2,
            workgroup: 16,
        };
        let Ok(v) = std::env::var("DUEL_SG_TILE") else {
            return default;
        };
        let p: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match p[..] {
            [rows, vec_cols, workgroup]
                if rows % 4 == 0 && rows > 0 && vec_cols > 0 && workgroup >= 8 =>
            {
                SgTile {
                    rows,
                    vec_cols,
                    workgroup,
                }
            }
            _ => default,
        }
    }
}

fn aligned(x: usize) -> bool {
    x.is_multiple_of(4)
}

/// The subgroup kernel's layout for this product, or None when its alignment rules fail.
pub fn sg_layout(a: &MatView, b: &MatView, m: usize, n: usize, k: usize) -> Option<SgLayout> {
    let a_off = a.t.offset as usize;
    let b_off = b.t.offset as usize;
    // A stride only matters along a dimension longer than 1.
    let a_k_fast = if a.cs == 1 && (aligned(a.rs) || m == 1) && aligned(k) {
        true
    } else if a.rs == 1 && (aligned(a.cs) || k == 1) && aligned(m) {
        false
    } else {
        return None;
    };
    let b_n_fast = if b.cs == 1 && (aligned(b.rs) || k == 1) && aligned(n) {
        true
    } else if b.rs == 1 && (aligned(b.cs) || n == 1) && aligned(k) {
        false
    } else {
        return None;
    };
    (aligned(a_off) && aligned(b_off) && k > 0).then_some(SgLayout { a_k_fast, b_n_fast })
}

/// WGSL of the subgroup kernel for one layout. Shares `Params` and bindings with
/// `shaders/matmul.wgsl`; A and B are bound as `array<vec4<f32>>`.
pub fn subgroup_source(layout: SgLayout, tile: SgTile) -> String {
    let (r_n, cv, wg) = (tile.rows, tile.vec_cols, tile.workgroup);
    let tile_n = tile.tile_n();
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(format!(
        "// Generated by src/gpu/matmul.rs (subgroup kernel, {layout:?}): C[M,N] = A·B (+ bias) (+ C).\n\
         // Workgroup: {r_n} rows × {} columns; invocation: {r_n} rows × {} columns in registers.",
        tile_n,
        4 * cv
    ));
    line(
        "struct Params { m: u32, n: u32, k: u32, flags: u32, a_off: u32, a_rs: u32, a_cs: u32, \
         b_off: u32, b_rs: u32, b_cs: u32, c_off: u32, bias_off: u32, act: u32, alpha: f32 }"
            .into(),
    );
    line("@group(0) @binding(0) var<uniform> p: Params;".into());
    line("@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;".into());
    line("@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;".into());
    line("@group(0) @binding(3) var<storage, read> bias: array<f32>;".into());
    line("@group(0) @binding(4) var<storage, read_write> c: array<f32>;".into());
    line(crate::kernels::matmul::EPILOGUE.text());
    line(format!(
        "@compute @workgroup_size({wg})\nfn matmul_subgroup(@builtin(workgroup_id) wg: vec3<u32>, \
         @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sl: u32) {{"
    ));
    line(format!("  let row0 = wg.y * {r_n}u;"));
    line(format!("  let col0 = wg.x * {tile_n}u + li * {}u;", 4 * cv));
    line("  let a_base = p.a_off / 4u; let b_base = p.b_off / 4u;".into());
    // Row (or row-quad) bases of A, clamped into the matrix: rows past M compute garbage that
    // is never stored, and every load stays inside the view.
    if layout.a_k_fast {
        line("  let a_rs4 = p.a_rs / 4u;".into());
        for r in 0..r_n {
            line(format!(
                "  let ar{r} = a_base + min(row0 + {r}u, p.m - 1u) * a_rs4;"
            ));
        }
    } else {
        line("  let a_cs4 = p.a_cs / 4u; let m4 = p.m / 4u;".into());
        for q in 0..r_n / 4 {
            line(format!(
                "  let aq{q} = a_base + min(row0 / 4u + {q}u, m4 - 1u);"
            ));
        }
    }
    if layout.b_n_fast {
        line("  let b_rs4 = p.b_rs / 4u; let n4 = p.n / 4u;".into());
        for j in 0..cv {
            line(format!(
                "  let bc{j} = b_base + min(col0 / 4u + {j}u, n4 - 1u);"
            ));
        }
    } else {
        line("  let b_cs4 = p.b_cs / 4u;".into());
        for j in 0..4 * cv {
            line(format!(
                "  let bc{j} = b_base + min(col0 + {j}u, p.n - 1u) * b_cs4;"
            ));
        }
    }
    line("  let k4 = (p.k + 3u) / 4u;".into());
    for r in 0..r_n {
        for j in 0..cv {
            line(format!("  var acc{r}_{j} = vec4<f32>(0.0);"));
        }
    }
    // One K block: 32 values when A is K-fast (8 lanes × vec4), else 8 (8 lanes × one K).
    let kb = if layout.a_k_fast { 32 } else { 8 };
    line(format!("  for (var k0 = 0u; k0 < p.k; k0 += {kb}u) {{"));
    if layout.a_k_fast {
        line("    let kq = k0 / 4u + sl; let kin = kq < k4; let kqc = min(kq, k4 - 1u);".into());
        for r in 0..r_n {
            line(format!(
                "    let av{r} = select(vec4<f32>(0.0), a[ar{r} + kqc], kin);"
            ));
        }
    } else {
        line(
            "    let ka = k0 + sl; let kin = ka < p.k; let kac = min(ka, p.k - 1u) * a_cs4;".into(),
        );
        for q in 0..r_n / 4 {
            line(format!(
                "    let av{q} = select(vec4<f32>(0.0), a[aq{q} + kac], kin);"
            ));
        }
    }
    // Walk the block in groups of 4 K values.
    for g in 0..kb / 4 {
        line("    {".into());
        if !layout.b_n_fast {
            line(format!("      let kq = min(k0 / 4u + {g}u, k4 - 1u);"));
            for j in 0..4 * cv {
                line(format!("      let bq{j} = b[bc{j} + kq];"));
            }
        }
        if layout.a_k_fast {
            for r in 0..r_n {
                line(format!("      let ag{r} = subgroupBroadcast(av{r}, {g}u);"));
            }
        }
        for e in 0..4u32 {
            line("      {".into());
            let kidx = 4 * g + e;
            if layout.b_n_fast {
                line(format!(
                    "        let kr = min(k0 + {kidx}u, p.k - 1u) * b_rs4;"
                ));
                for j in 0..cv {
                    line(format!("        let b{j} = b[bc{j} + kr];"));
                }
            } else {
                for j in 0..cv {
                    let c = |i: u32| format!("bq{}[{e}]", 4 * j + i);
                    line(format!(
                        "        let b{j} = vec4<f32>({}, {}, {}, {});",
                        c(0),
                        c(1),
                        c(2),
                        c(3)
                    ));
                }
            }
            if !layout.a_k_fast {
                for q in 0..r_n / 4 {
                    line(format!(
                        "        let aw{q} = subgroupBroadcast(av{q}, {kidx}u);"
                    ));
                }
            }
            for r in 0..r_n {
                let av = if layout.a_k_fast {
                    format!("ag{r}[{e}]")
                } else {
                    format!("aw{}[{}]", r / 4, r % 4)
                };
                for j in 0..cv {
                    line(format!(
                        "        acc{r}_{j} = fma(vec4<f32>({av}), b{j}, acc{r}_{j});"
                    ));
                }
            }
            line("      }".into());
        }
        line("    }".into());
    }
    line("  }".into());
    for r in 0..r_n {
        line(format!(
            "  if row0 + {r}u < p.m {{ let base = p.c_off + (row0 + {r}u) * p.n;"
        ));
        for j in 0..cv {
            for e in 0..4 {
                line(format!(
                    "    {{ let cc = col0 + {}u; if cc < p.n {{ c[base + cc] = epilogue(acc{r}_{j}[{e}], base + cc, cc); }} }}",
                    4 * j + e
                ));
            }
        }
        line("  }".into());
    }
    line("}".into());
    s
}

/// The largest word index `view` touches for an `rows`×`cols` matrix (None when empty).
pub fn view_extent(view: &MatView, rows: usize, cols: usize) -> Option<usize> {
    (rows > 0 && cols > 0)
        .then(|| view.t.offset as usize + (rows - 1) * view.rs + (cols - 1) * view.cs)
}
