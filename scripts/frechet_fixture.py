"""Expected Fréchet distances for tests/frechet_pytorch_fid.rs, computed by pytorch-fid's own
`calculate_frechet_distance` (pytorch-fid 0.3.0, src/pytorch_fid/fid_score.py, copied verbatim
below so the script needs only numpy and scipy, not torch).

Regenerate the fixture with:
    python3 -m pip install numpy scipy
    python3 scripts/frechet_fixture.py > tests/fixtures/frechet_pytorch_fid.json

Each case is two feature sets (float32 values, as a feature network emits them); the
statistics are pytorch-fid's `calculate_activation_statistics` on them (mean over samples, the
unbiased `np.cov(rowvar=False)`), computed in float64.
"""

import contextlib
import io
import json

import numpy as np
from scipy import linalg


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Numpy implementation of the Frechet Distance.
    The Frechet distance between two multivariate Gaussians X_1 ~ N(mu_1, C_1)
    and X_2 ~ N(mu_2, C_2) is
            d^2 = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2*sqrt(C_1*C_2)).

    Stable version by Dougal J. Sutherland.

    Params:
    -- mu1   : Numpy array containing the activations of a layer of the
               inception net (like returned by the function 'get_predictions')
               for generated samples.
    -- mu2   : The sample mean over activations, precalculated on an
               representative data set.
    -- sigma1: The covariance matrix over activations for generated samples.
    -- sigma2: The covariance matrix over activations, precalculated on an
               representative data set.

    Returns:
    --   : The Frechet Distance.
    """

    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)

    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)

    assert mu1.shape == mu2.shape, \
        'Training and test mean vectors have different lengths'
    assert sigma1.shape == sigma2.shape, \
        'Training and test covariances have different dimensions'

    diff = mu1 - mu2

    # Product might be almost singular
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        msg = ('fid calculation produces singular product; '
               'adding %s to diagonal of cov estimates') % eps
        print(msg)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))

    # Numerical error might give slight imaginary component
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError('Imaginary component {}'.format(m))
        covmean = covmean.real

    tr_covmean = np.trace(covmean)

    return (diff.dot(diff) + np.trace(sigma1)
            + np.trace(sigma2) - 2 * tr_covmean)


def statistics(act):
    act = act.astype(np.float64)
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def correlated(rng, n, d, rank, shift, scale):
    """n samples of d features lying in a random `rank`-dimensional subspace (rank < d gives a
    singular covariance), as float32."""
    basis = rng.standard_normal((rank, d)) * scale
    return (rng.standard_normal((n, rank)) @ basis + shift).astype(np.float32)


def main():
    rng = np.random.default_rng(2026)
    cases = []

    def case(name, a, b, note):
        mu1, s1 = statistics(a)
        mu2, s2 = statistics(b)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            fid = float(calculate_frechet_distance(mu1, s1, mu2, s2))
        cases.append({
            "name": name,
            "note": note,
            "d": a.shape[1],
            "a": [float(v) for v in a.ravel()],
            "b": [float(v) for v in b.ravel()],
            "fid": fid,
            "eps_offset_used": "singular product" in printed.getvalue(),
        })

    case("full_rank", correlated(rng, 40, 6, 6, 0.0, 1.0),
         correlated(rng, 50, 6, 6, 0.3, 0.8), "40 and 50 samples of 6 features")
    case("rank_deficient", correlated(rng, 5, 12, 12, 0.0, 1.0),
         correlated(rng, 7, 12, 12, -0.5, 1.5),
         "5 and 7 samples of 12 features: covariances of rank 4 and 6")
    case("low_rank_features", correlated(rng, 60, 10, 3, 1.0, 1.0),
         correlated(rng, 60, 10, 4, 1.2, 1.0),
         "60 samples each in 3- and 4-dimensional subspaces of 10 features")
    dead = correlated(rng, 30, 8, 8, 0.0, 2.0)
    dead[:, 2] = 0.5
    dead2 = correlated(rng, 30, 8, 8, 0.1, 2.0)
    dead2[:, 2] = 0.5
    dead2[:, 5] = -1.0
    case("dead_features", dead, dead2, "a constant feature in both sets, another in one")
    case("identical", dead2, dead2.copy(), "a set against itself: 0 up to roundoff")
    print(json.dumps({"source": "pytorch-fid 0.3.0 calculate_frechet_distance",
                      "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
