// GAN losses from D's raw output l, their gradients dL/dl, and the batch means. The original
// losses read l as a logit (D(x) = σ(l)) in the stable softplus form
// (log σ(l) = -softplus(-l), log(1 - σ(l)) = -softplus(l)); the others read l as D's score.
//   kind 0, discriminator:      mean_real softplus(-l) + mean_fake softplus(l)
//                               (= -[log D(x) + log(1 - D(G(z)))])
//   kind 1, G minimax:          mean_fake -softplus(l)   (= log(1 - D(G(z))), the paper's)
//   kind 2, G non-saturating:   mean_fake softplus(-l)   (= -log D(G(z)))
//   kind 3, Wasserstein critic: mean_fake l - mean_real l (the critic maximises E[D(x)] - E[D(G(z))])
//   kind 4, G Wasserstein/hinge: -mean_fake l
//   kind 5, hinge D:            mean_real max(0, 1 - l) + mean_fake max(0, 1 + l)
//   kind 6, least-squares D:    ½ mean_real (l - 1)² + ½ mean_fake l²   (LSGAN, a = 0, b = 1)
//   kind 7, least-squares G:    ½ mean_fake (l - 1)²                    (c = 1)
// A discriminator kind adds drift·mean_real l² (ProGAN's ε_drift·E[D(x)²], which keeps a
// critic's outputs from drifting far from 0) when `drift` is not 0.
// The first n_real values are real samples, the next n_fake fakes. Writes dL/dl and, in one
// workgroup with a fixed-order tree, reduces the batch to stats[stats_off ..+3] =
// (L, mean D(x), mean D(G(z))) — D as a probability σ(l) for kinds 0-2, the raw score l
// otherwise — added to what is there when `accumulate` is set.
// Twin: src/kernels/gan_loss.rs.

struct Params {
    n_real: u32,
    n_fake: u32,
    kind: u32,
    logits_off: u32,
    grad_off: u32,
    stats_off: u32,
    accumulate: u32,
    drift: f32,
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

// (loss term, dloss/dl) of one value, before the batch mean.
fn term(kind: u32, real: bool, l: f32) -> vec2<f32> {
    switch kind {
        case 0u, 1u, 2u: {
            let s = sigmoid(l);
            if real || kind == 2u {
                return vec2<f32>(softplus(-l), s - 1.0);
            }
            if kind == 0u {
                return vec2<f32>(softplus(l), s);
            }
            return vec2<f32>(-softplus(l), -s);
        }
        case 3u: {
            return select(vec2<f32>(l, 1.0), vec2<f32>(-l, -1.0), real);
        }
        case 4u: {
            return vec2<f32>(-l, -1.0);
        }
        case 5u: {
            if real {
                return vec2<f32>(max(0.0, 1.0 - l), select(0.0, -1.0, l < 1.0));
            }
            return vec2<f32>(max(0.0, 1.0 + l), select(0.0, 1.0, l > -1.0));
        }
        default: {
            // 6: least-squares D (target 1 real, 0 fake); 7: least-squares G (target 1).
            let want = select(0.0, 1.0, real || kind == 7u);
            let e = l - want;
            return vec2<f32>(0.5 * e * e, e);
        }
    }
}

@compute @workgroup_size(256)
fn gan_loss(@builtin(local_invocation_index) li: u32) {
    let n = p.n_real + p.n_fake;
    let inv_real = 1.0 / f32(max(p.n_real, 1u));
    let inv_fake = 1.0 / f32(max(p.n_fake, 1u));
    let probabilities = p.kind <= 2u;
    var loss = 0.0;
    var d_real = 0.0;
    var d_fake = 0.0;
    for (var i = li; i < n; i += WG) {
        let l = logits[p.logits_off + i];
        let real = i < p.n_real;
        let scale = select(inv_fake, inv_real, real);
        var t = term(p.kind, real, l);
        if real {
            t += p.drift * vec2<f32>(l * l, 2.0 * l);
        }
        loss += t.x * scale;
        grad[p.grad_off + i] = t.y * scale;
        let d = select(l, sigmoid(l), probabilities);
        if real {
            d_real += d;
        } else {
            d_fake += d;
        }
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
