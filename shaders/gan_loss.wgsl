// GAN losses from D's logits l (D(x) = σ(l)), in the stable softplus form
// (log σ(l) = -softplus(-l), log(1 - σ(l)) = -softplus(l)):
//   kind 0, discriminator:     L = mean_real softplus(-l) + mean_fake softplus(l)
//                              (= -[log D(x) + log(1 - D(G(z)))])
//   kind 1, G minimax:         L = mean_fake -softplus(l)   (= log(1 - D(G(z))), the paper's)
//   kind 2, G non-saturating:  L = mean_fake softplus(-l)   (= -log D(G(z)))
// The first n_real logits are real samples, the next n_fake fakes. Writes dL/dl and, in one
// workgroup with a fixed-order tree, reduces the batch to stats[stats_off ..+3] =
// (L, mean D(x), mean D(G(z))), added to what is there when `accumulate` is set.
// Twin: src/kernels/gan_loss.rs.

struct Params {
    n_real: u32,
    n_fake: u32,
    kind: u32,
    logits_off: u32,
    grad_off: u32,
    stats_off: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;

const WG: u32 = 256u;
var<workgroup> red_loss: array<f32, WG>;
var<workgroup> red_real: array<f32, WG>;
var<workgroup> red_fake: array<f32, WG>;

fn softplus(v: f32) -> f32 {
    return max(v, 0.0) + log(1.0 + exp(-abs(v)));
}

fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn gan_loss(@builtin(local_invocation_index) li: u32) {
    let n = p.n_real + p.n_fake;
    let inv_real = 1.0 / f32(max(p.n_real, 1u));
    let inv_fake = 1.0 / f32(max(p.n_fake, 1u));
    var loss = 0.0;
    var d_real = 0.0;
    var d_fake = 0.0;
    for (var i = li; i < n; i += WG) {
        let l = logits[p.logits_off + i];
        let s = sigmoid(l);
        var g: f32;
        if i < p.n_real {
            loss += softplus(-l) * inv_real;
            g = (s - 1.0) * inv_real;
            d_real += s;
        } else {
            d_fake += s;
            switch p.kind {
                case 0u: {
                    loss += softplus(l) * inv_fake;
                    g = s * inv_fake;
                }
                case 1u: {
                    loss -= softplus(l) * inv_fake;
                    g = -s * inv_fake;
                }
                default: {
                    loss += softplus(-l) * inv_fake;
                    g = (s - 1.0) * inv_fake;
                }
            }
        }
        grad[p.grad_off + i] = g;
    }
    red_loss[li] = loss;
    red_real[li] = d_real;
    red_fake[li] = d_fake;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if li < half {
            red_loss[li] += red_loss[li + half];
            red_real[li] += red_real[li + half];
            red_fake[li] += red_fake[li + half];
        }
        workgroupBarrier();
    }
    if li == 0u {
        var out = vec3<f32>(red_loss[0], red_real[0] * inv_real, red_fake[0] * inv_fake);
        if p.n_real == 0u {
            out.y = 0.0;
        }
        if p.accumulate != 0u {
            out += vec3<f32>(stats[p.stats_off], stats[p.stats_off + 1u], stats[p.stats_off + 2u]);
        }
        stats[p.stats_off] = out.x;
        stats[p.stats_off + 1u] = out.y;
        stats[p.stats_off + 2u] = out.z;
    }
}
