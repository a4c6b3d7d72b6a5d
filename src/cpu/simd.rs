//! The widest vector unit this CPU has, for the CPU twins' own inner loops. duel is built for
//! the architecture's baseline (SSE2 on x86-64), so a binary runs on any machine of its kind;
//! `wide(f)` runs `f` compiled again for AVX-512 or AVX2 + FMA when the CPU has them (checked
//! once), the way PyTorch's CPU kernels pick theirs. The `gemm` crate dispatches its own.
//!
//! For `f`'s loops to be compiled for the wider unit they must be inlined into it: mark the
//! closure and every helper it calls in its hot loops `#[inline(always)]`. A helper that is not
//! inlined still runs, compiled for the baseline. No result depends on the choice: Rust never
//! fuses a multiply and an add or reorders float sums on its own, so every level computes the
//! same bits (`conv_winograd`'s `every_simd_level_gives_the_same_bits`).

use std::sync::atomic::{AtomicU8, Ordering};

/// Vector units, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Baseline = 1,
    Avx2 = 2,
    Avx512 = 3,
}

/// 0 until detected; then the level `wide` uses.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// What this CPU has (x86-64: AVX-512F, else AVX2 with FMA, else the baseline; other
/// architectures: their baseline, which has their vector unit: NEON on aarch64).
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level `wide` runs at: `detected()`, or `DUEL_CPU_SIMD=baseline|avx2|avx512` (a lower
/// level, for a CPU that slows its clock for wide vectors, or to compare); a value it cannot
/// use gets a one-line warning and the detected level.
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let var = std::env::var("DUEL_CPU_SIMD").unwrap_or_default();
            let l = chosen(&var, detected()).unwrap_or_else(|e| {
                eprintln!("warning: DUEL_CPU_SIMD={var}: {e}; using {:?}", detected());
                detected()
            });
            LEVEL.store(l as u8, Ordering::Relaxed);
            l
        }
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => Level::Baseline,
    }
}

/// The level `DUEL_CPU_SIMD=setting` asks for on a CPU that has `top` ("" or auto: `top`).
fn chosen(setting: &str, top: Level) -> Result<Level, String> {
    let l = match setting {
        "" | "auto" => return Ok(top),
        "baseline" => Level::Baseline,
        "avx2" => Level::Avx2,
        "avx512" => Level::Avx512,
        _ => return Err("not auto, baseline, avx2 or avx512".into()),
    };
    if l > top {
        return Err(format!("this CPU has no {l:?} (it has {top:?})"));
    }
    Ok(l)
}

/// f() with `wide` running at `l` on every thread meanwhile (tests compare the levels; calls
/// of `with_level` take turns). A level above `detected()` is refused.
pub fn with_level<R>(l: Level, f: impl FnOnce() -> R) -> Result<R, String> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if l > detected() {
        return Err(format!("this CPU has no {l:?} (it has {:?})", detected()));
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let before = level();
    LEVEL.store(l as u8, Ordering::Relaxed);
    let r = f();
    LEVEL.store(before as u8, Ordering::Relaxed);
    Ok(r)
}

/// f(), compiled for `level()`.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: `level()` never exceeds `detected()`, so the CPU has these features.
            Level::Avx512 => return unsafe { avx512(f) },
            Level::Avx2 => return unsafe { avx2(f) },
            Level::Baseline => {}
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_above_the_cpus_are_refused() {
        let top = detected();
        let sum = || wide(|| (0..1000).map(|i| i as f32 * 0.5).sum::<f32>());
        for l in [Level::Baseline, Level::Avx2, Level::Avx512] {
            match with_level(l, || (level(), sum())) {
                Ok((seen, total)) => {
                    assert!(l <= top);
                    assert_eq!(seen, l);
                    assert_eq!(total, 249_750.0);
                }
                Err(e) => assert!(l > top && e.contains("has no"), "{l:?} on {top:?}: {e}"),
            }
        }
        assert!(level() <= top);
    }

    #[test]
    fn the_setting_picks_a_level_the_cpu_has() {
        use Level::*;
        assert_eq!(chosen("", Avx512), Ok(Avx512));
        assert_eq!(chosen("auto", Avx2), Ok(Avx2));
        assert_eq!(chosen("avx2", Avx512), Ok(Avx2));
        assert_eq!(chosen("baseline", Avx2), Ok(Baseline));
        assert!(
            chosen("avx512", Avx2)
                .unwrap_err()
                .contains("has no Avx512")
        );
        assert!(chosen("sse9", Avx512).unwrap_err().contains("not auto"));
    }
}
