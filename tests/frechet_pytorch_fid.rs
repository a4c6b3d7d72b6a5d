//! duel's Fréchet distance equals pytorch-fid's `calculate_frechet_distance` (scipy's `sqrtm` of
//! Σ1·Σ2, real part, trace) on fixed feature sets: full rank, rank-deficient (fewer samples
//! than features), features confined to low-dimensional subspaces, dead (constant) features,
//! and a set against itself. The expected numbers come from `scripts/frechet_fixture.py`,
//! which runs pytorch-fid's function verbatim on the same features (regenerate the fixture with
//! it; CI needs no scipy).

use duel::metrics::{Features, fid};
use serde_json::Value;

#[test]
fn frechet_distance_matches_pytorch_fid() {
    let text = include_str!("fixtures/frechet_pytorch_fid.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let d = c["d"].as_u64().unwrap() as usize;
        let values = |key: &str| -> Vec<f32> {
            c[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        let (a, b) = (values("a"), values("b"));
        let want = c["fid"].as_f64().unwrap();
        let got = fid(Features::new(&a, d).unwrap(), Features::new(&b, d).unwrap()).unwrap();
        // scipy's sqrtm of a singular product is accurate to about 1e-9 relative here (duel's
        // symmetric eigendecomposition to roundoff); full rank agrees to ~1e-15. duel clamps
        // the roundoff below 0 of a set against itself to 0.
        let scale = 1.0 + want.abs();
        println!(
            "{name}: duel {got:.12} pytorch-fid {want:.12} diff {:.3e}",
            (got - want).abs()
        );
        assert!(
            (got - want).abs() <= 1e-8 * scale,
            "{name}: duel {got}, pytorch-fid {want}"
        );
    }
}
