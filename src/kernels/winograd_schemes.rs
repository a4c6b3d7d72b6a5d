//! The two Winograd schemes of the CPU convolutions (`conv_winograd`): F(2×2, 2×2) and
//! F(4×4, 2×2), each a 2×2 convolution's tile of m×m outputs from an (m+1)×(m+1) patch with
//! (m+1)² multiplies instead of 4m² (Lavin & Gray 2016):
//!
//!   Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
//!
//! Every 2-D transform is its 1-D one along rows, then columns (`both_axes`). The adjoints are
//! what the gradients need: the input gradient runs the forward backwards (A d Aᵀ of dy's
//! tiles, B m Bᵀ of the products), and the weight gradient reads the filter's taps from the
//! products with Gᵀ m G.
//!
//! - F(2, 2) at the points 0, 1, ∞: Bᵀ = [1 −1 0; 0 1 0; 0 −1 1], G = [1 0; 1 1; 0 1],
//!   Aᵀ = [1 1 0; 0 1 1]. Every entry is 0 or ±1, so rounding stays that of a direct sum.
//! - F(4, 2) at the points 0, 1, −1, 2, ∞ (Toom–Cook; the rows of Bᵀ scaled to integers, G
//!   taking the inverse scale): entries up to 3 in Bᵀ, 8 in Aᵀ and 1/6 in G. Its sums of 256
//!   products of N(0, 1) values differ from the exact ones by about 8e-6 of the largest
//!   (float32, measured in NumPy), against about 1e-7 for a direct sum.

/// One scheme F(m×m, 2×2): P = (m + 1)² points (one GEMM each), Q = m² outputs per tile.
pub(super) trait Scheme<const P: usize, const Q: usize> {
    /// Output pixels along each side of a tile (m).
    const TILE: usize;
    /// Tiles each chunk's GEMMs aim for (their N; K for the weight gradient): a chunk's
    /// transformed data and products stay in cache. Measured on the 2-core Zen 5.
    const CHUNK_TILES: usize;
    /// Bᵀ d B of a patch d (row-major).
    fn data(d: [f32; P]) -> [f32; P];
    /// G g Gᵀ of a 2×2 filter g = [g00, g01, g10, g11].
    fn filter(g: [f32; 4]) -> [f32; P];
    /// Aᵀ m A: the tile of outputs of the products m.
    fn output(m: [f32; P]) -> [f32; Q];
    /// A d Aᵀ of a tile d of dy (`output`'s adjoint).
    fn output_grad(d: [f32; Q]) -> [f32; P];
    /// B m Bᵀ: the gradient of the patch `data` read (its adjoint).
    fn patch_grad(m: [f32; P]) -> [f32; P];
    /// Gᵀ m G: a filter's 2×2 taps from a sum of products (`filter`'s adjoint).
    fn taps(m: [f32; P]) -> [f32; 4];
}

/// F(2×2, 2×2): 9 points, 2×2 tiles.
pub(super) struct F2;

/// F(4×4, 2×2): 25 points, 4×4 tiles.
pub(super) struct F4;

impl Scheme<9, 4> for F2 {
    const TILE: usize = 2;
    const CHUNK_TILES: usize = 512;

    // Written out rather than through `both_axes`: these are dcgan32's hot loops, and the
    // generic form measured a few per cent slower there.
    #[inline(always)]
    fn data(d: [f32; 9]) -> [f32; 9] {
        let rows = [
            [d[0] - d[3], d[1] - d[4], d[2] - d[5]],
            [d[3], d[4], d[5]],
            [d[6] - d[3], d[7] - d[4], d[8] - d[5]],
        ];
        let mut v = [0.0; 9];
        for (i, r) in rows.iter().enumerate() {
            v[3 * i] = r[0] - r[1];
            v[3 * i + 1] = r[1];
            v[3 * i + 2] = r[2] - r[1];
        }
        v
    }

    #[inline(always)]
    fn filter(g: [f32; 4]) -> [f32; 9] {
        let rows = [[g[0], g[1]], [g[0] + g[2], g[1] + g[3]], [g[2], g[3]]];
        let mut u = [0.0; 9];
        for (i, r) in rows.iter().enumerate() {
            u[3 * i] = r[0];
            u[3 * i + 1] = r[0] + r[1];
            u[3 * i + 2] = r[1];
        }
        u
    }

    #[inline(always)]
    fn output(m: [f32; 9]) -> [f32; 4] {
        let r0 = [m[0] + m[3], m[1] + m[4], m[2] + m[5]];
        let r1 = [m[3] + m[6], m[4] + m[7], m[5] + m[8]];
        [r0[0] + r0[1], r0[1] + r0[2], r1[0] + r1[1], r1[1] + r1[2]]
    }

    #[inline(always)]
    fn output_grad(d: [f32; 4]) -> [f32; 9] {
        // A and G are the same 3×2 matrix.
        Self::filter(d)
    }

    #[inline(always)]
    fn patch_grad(m: [f32; 9]) -> [f32; 9] {
        let rows = [
            [m[0], m[1], m[2]],
            [m[3] - m[0] - m[6], m[4] - m[1] - m[7], m[5] - m[2] - m[8]],
            [m[6], m[7], m[8]],
        ];
        let mut d = [0.0; 9];
        for (i, r) in rows.iter().enumerate() {
            d[3 * i] = r[0];
            d[3 * i + 1] = r[1] - r[0] - r[2];
            d[3 * i + 2] = r[2];
        }
        d
    }

    #[inline(always)]
    fn taps(m: [f32; 9]) -> [f32; 4] {
        Self::output(m)
    }
}

impl Scheme<25, 16> for F4 {
    const TILE: usize = 4;
    const CHUNK_TILES: usize = 64;

    #[inline(always)]
    fn data(d: [f32; 25]) -> [f32; 25] {
        both_axes(d, |d: [f32; 5]| {
            [
                2.0 * (d[0] - d[2]) + (d[3] - d[1]),
                2.0 * d[1] + (d[2] - d[3]),
                3.0 * d[2] - (2.0 * d[1] + d[3]),
                d[3] - d[1],
                2.0 * (d[1] - d[3]) + (d[4] - d[2]),
            ]
        })
    }

    #[inline(always)]
    fn filter(g: [f32; 4]) -> [f32; 25] {
        const SIXTH: f32 = 1.0 / 6.0;
        both_axes(g, |t: [f32; 2]| {
            [
                0.5 * t[0],
                0.5 * (t[0] + t[1]),
                SIXTH * (t[0] - t[1]),
                SIXTH * (t[0] + 2.0 * t[1]),
                t[1],
            ]
        })
    }

    #[inline(always)]
    fn output(m: [f32; 25]) -> [f32; 16] {
        both_axes(m, |m: [f32; 5]| {
            [
                m[0] + m[1] + m[2] + m[3],
                m[1] - m[2] + 2.0 * m[3],
                m[1] + m[2] + 4.0 * m[3],
                m[1] - m[2] + 8.0 * m[3] + m[4],
            ]
        })
    }

    #[inline(always)]
    fn output_grad(d: [f32; 16]) -> [f32; 25] {
        both_axes(d, |y: [f32; 4]| {
            [
                y[0],
                y[0] + y[1] + y[2] + y[3],
                y[0] - y[1] + y[2] - y[3],
                y[0] + 2.0 * y[1] + 4.0 * y[2] + 8.0 * y[3],
                y[3],
            ]
        })
    }

    #[inline(always)]
    fn patch_grad(m: [f32; 25]) -> [f32; 25] {
        both_axes(m, |m: [f32; 5]| {
            [
                2.0 * m[0],
                2.0 * (m[1] - m[2] + m[4]) - (m[0] + m[3]),
                (m[2] + m[2] + m[2] + m[1]) - (2.0 * m[0] + m[4]),
                m[0] + m[3] - (m[1] + m[2] + 2.0 * m[4]),
                m[4],
            ]
        })
    }

    #[inline(always)]
    fn taps(m: [f32; 25]) -> [f32; 4] {
        const SIXTH: f32 = 1.0 / 6.0;
        both_axes(m, |m: [f32; 5]| {
            [
                0.5 * (m[0] + m[1]) + SIXTH * (m[2] + m[3]),
                0.5 * m[1] + SIXTH * (2.0 * m[3] - m[2]) + m[4],
            ]
        })
    }
}

/// F x Fᵀ of an I×I block x (row-major), where `f` applies the O×I matrix F to a vector: the
/// 1-D transform along rows, then along columns.
#[inline(always)]
fn both_axes<const I: usize, const O: usize, const II: usize, const OO: usize>(
    x: [f32; II],
    f: impl Fn([f32; I]) -> [f32; O],
) -> [f32; OO] {
    debug_assert!(II == I * I && OO == O * O);
    let mut rows = [[0.0f32; O]; I];
    for (r, row) in rows.iter_mut().enumerate() {
        let mut v = [0.0f32; I];
        for (c, v) in v.iter_mut().enumerate() {
            *v = x[r * I + c];
        }
        *row = f(v);
    }
    let mut out = [0.0; OO];
    for c in 0..O {
        let mut v = [0.0f32; I];
        for (r, v) in v.iter_mut().enumerate() {
            *v = rows[r][c];
        }
        for (r, y) in f(v).into_iter().enumerate() {
            out[r * O + c] = y;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1-D correlation of 2 taps over a patch, in f64.
    fn direct(d: &[f64], g: &[f64], i: usize, j: usize, p: usize) -> f64 {
        (0..2)
            .flat_map(|a| (0..2).map(move |b| (a, b)))
            .map(|(a, b)| g[a * 2 + b] * d[(i + a) * p + j + b])
            .sum()
    }

    /// Each scheme's forward on one tile equals the direct 2×2 correlation, and each adjoint is
    /// the transpose of its map (⟨F x, y⟩ = ⟨x, Fᵀ y⟩ on random vectors).
    fn check<S: Scheme<P, Q>, const P: usize, const Q: usize>() {
        let m = S::TILE;
        let p = m + 1;
        let vals = |seed: u32, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    (((i as u32 + 1).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0
                })
                .collect()
        };
        let d: [f32; P] = vals(1, P).try_into().unwrap();
        let g: [f32; 4] = vals(2, 4).try_into().unwrap();
        let u = S::filter(g);
        let v = S::data(d);
        let y = S::output(std::array::from_fn(|i| u[i] * v[i]));
        let (d64, g64): (Vec<f64>, Vec<f64>) = (
            d.iter().map(|&x| x as f64).collect(),
            g.iter().map(|&x| x as f64).collect(),
        );
        for i in 0..m {
            for j in 0..m {
                let want = direct(&d64, &g64, i, j, p);
                assert!(
                    (y[i * m + j] as f64 - want).abs() < 1e-5,
                    "F({m}) output {i},{j}"
                );
            }
        }
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| *x as f64 * *y as f64)
                .sum::<f64>()
        };
        let (xp, yp, xq, x4): ([f32; P], [f32; P], [f32; Q], [f32; 4]) = (
            vals(3, P).try_into().unwrap(),
            vals(4, P).try_into().unwrap(),
            vals(5, Q).try_into().unwrap(),
            vals(6, 4).try_into().unwrap(),
        );
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                "F({m}) {what}: {a} vs {b}"
            )
        };
        close(
            dot(&S::data(xp), &yp),
            dot(&xp, &S::patch_grad(yp)),
            "patch_grad = dataᵀ",
        );
        close(
            dot(&S::output(xp), &xq),
            dot(&xp, &S::output_grad(xq)),
            "output_grad = outputᵀ",
        );
        close(
            dot(&S::filter(x4), &yp),
            dot(&x4, &S::taps(yp)),
            "taps = filterᵀ",
        );
    }

    #[test]
    fn both_schemes_compute_the_correlation_and_their_adjoints_are_transposes() {
        check::<F2, 9, 4>();
        check::<F4, 25, 16>();
    }
}
