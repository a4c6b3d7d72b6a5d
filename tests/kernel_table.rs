//! The kernel table, checked as a whole: every kernel on the GPU and through the CPU backend
//! against its plain reference on its ragged cases; every parameter struct and binding list
//! against the WGSL it mirrors (reflected with naga); and every kernel has cases and benchmark
//! rows. A kernel added to the table is covered by these tests without another line.

mod common;

use duel::gpu::MatmulChoice;
use duel::gpu::autotune::CLASSES;
use duel::kernels::{ALL, Access, Elem, KernelDef, ParamsLayout};
use naga::{AddressSpace, ScalarKind, StorageAccess, TypeInner};

/// Runs every case of `defs` on the GPU and the CPU backend and compares both with the
/// reference; returns the failures.
fn run_cases(defs: &[&'static KernelDef], gpu: &mut duel::GpuBackend) -> Vec<String> {
    let mut cpu = common::cpu();
    let mut failures = Vec::new();
    for def in defs {
        let cases = (def.cases)();
        for case in &cases {
            let want = case.run_host(def, def.reference);
            let twin = case
                .run(def, &mut cpu)
                .expect("the CPU backend runs every kernel");
            if let Err(e) = case.compare(def, "CPU twin vs reference", &twin, &want) {
                failures.push(e);
            }
            let got = case.run(def, gpu).expect("the GPU runs every kernel");
            if let Err(e) = case.compare(def, "GPU vs reference", &got, &want) {
                failures.push(e);
            }
        }
    }
    failures
}

#[test]
fn every_kernel_matches_its_reference_on_gpu_and_cpu() {
    let mut gpu = common::gpu();
    let failures = run_cases(ALL, &mut gpu);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn both_matmul_kernels_match_the_reference() {
    let mut gpu = common::gpu();
    let mut choices = vec![MatmulChoice::Tiled];
    if gpu.ctx.subgroups {
        choices.push(MatmulChoice::Subgroup);
    }
    for choice in choices {
        gpu.set_matmul_choice(choice).unwrap();
        let failures = run_cases(&[&duel::kernels::matmul::MATMUL], &mut gpu);
        assert!(failures.is_empty(), "{choice:?}: {}", failures.join("\n"));
    }
}

/// Every convolution variant the adapter can run, forced, on the convolutions' ragged cases
/// (every class: wide and narrow rows, every store step, split and accumulated weight
/// gradients); the subgroup kernels where it has subgroups of 8 or more (lavapipe), refused
/// where it has not (SwiftShader's are 4 wide).
#[test]
fn every_conv_kernel_matches_the_reference() {
    use duel::gpu::ConvChoice;
    use duel::kernels::conv::{CONV2D_BACKWARD_INPUT, CONV2D_BACKWARD_WEIGHTS, CONV2D_FORWARD};
    let mut gpu = common::gpu();
    for choice in ConvChoice::ALL {
        if choice == ConvChoice::Subgroup && !gpu.ctx.subgroups {
            assert!(gpu.set_conv_choice(choice).is_err());
            continue;
        }
        gpu.set_conv_choice(choice).unwrap();
        let defs = [
            &CONV2D_FORWARD,
            &CONV2D_BACKWARD_INPUT,
            &CONV2D_BACKWARD_WEIGHTS,
        ];
        let failures = run_cases(&defs, &mut gpu);
        assert!(failures.is_empty(), "{choice:?}: {}", failures.join("\n"));
    }
}

/// Both batched-matmul variants, forced, on its ragged cases (every attention product, short
/// and long reductions, every store step).
#[test]
fn both_batched_matmul_kernels_match_the_reference() {
    use duel::gpu::{BmmChoice, Variant};
    let mut gpu = common::gpu();
    for &choice in BmmChoice::ALL {
        gpu.set_bmm_choice(choice);
        let failures = run_cases(&[&duel::kernels::batched_matmul::BATCHED_MATMUL], &mut gpu);
        assert!(failures.is_empty(), "{choice:?}: {}", failures.join("\n"));
    }
}

#[test]
fn every_kernel_has_cases_and_benchmark_rows() {
    let mut names = std::collections::HashSet::new();
    for def in ALL {
        assert!(names.insert(def.name), "{} is in the table twice", def.name);
        let cases = (def.cases)();
        assert!(
            cases.len() >= 2,
            "{}: no GPU-vs-reference cases (add ragged shapes to its `cases`)",
            def.name
        );
        assert!(
            !(def.bench)().is_empty(),
            "{}: no row in `duel bench kernels` (add shapes to its `bench`)",
            def.name
        );
        for c in &cases {
            assert_eq!(c.params.len(), def.params.size, "{} {}", def.name, c.label);
        }
    }
}

// ---- the WGSL side ---------------------------------------------------------------------------

fn parse(name: &str, text: &str) -> naga::Module {
    naga::front::wgsl::parse_str(text)
        .unwrap_or_else(|e| panic!("{name}: WGSL does not parse: {}", e.emit_to_string(text)))
}

/// Checks the uniform `Params` at binding 0 against `layout`, and the storage bindings 1.. against
/// `def`'s list: names, offsets, size, access and element types.
fn check_module(what: &str, module: &naga::Module, layout: &ParamsLayout, def: &KernelDef) {
    let global = |binding: u32| {
        module.global_variables.iter().map(|(_, g)| g).find(|g| {
            g.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == binding)
        })
    };
    let p = global(0).unwrap_or_else(|| panic!("{what}: no binding 0"));
    assert_eq!(
        p.space,
        AddressSpace::Uniform,
        "{what}: binding 0 is not a uniform"
    );
    let TypeInner::Struct { members, span } = &module.types[p.ty].inner else {
        panic!("{what}: binding 0 is not a struct");
    };
    let wgsl: Vec<(String, usize)> = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .collect();
    let rust: Vec<(String, usize)> = layout
        .fields
        .iter()
        .map(|f| (f.name.to_string(), f.offset))
        .collect();
    assert_eq!(wgsl, rust, "{what}: WGSL Params and {} differ", layout.name);
    assert_eq!(*span as usize, layout.size, "{what}: Params size differs");
    for m in members {
        let ok = matches!(
            module.types[m.ty].inner,
            TypeInner::Scalar(s) if s.width == 4 && matches!(s.kind, ScalarKind::Uint | ScalarKind::Float)
        );
        assert!(ok, "{what}: Params field {:?} is not a u32 or f32", m.name);
    }
    for (i, b) in def.bindings.iter().enumerate() {
        let g = global(i as u32 + 1)
            .unwrap_or_else(|| panic!("{what}: no binding {} ({})", i + 1, b.name));
        assert_eq!(
            g.name.as_deref(),
            Some(b.name),
            "{what}: binding {} is named differently in the WGSL",
            i + 1
        );
        let AddressSpace::Storage { access } = g.space else {
            panic!("{what}: binding {} is not a storage buffer", b.name);
        };
        let writable = access.contains(StorageAccess::STORE);
        match b.access {
            Access::ReadWrite => assert!(writable, "{what}: {} is read-only in WGSL", b.name),
            Access::Read => assert!(!writable, "{what}: {} is writable in WGSL", b.name),
            Access::Unused => {}
        }
        let TypeInner::Array { base, .. } = module.types[g.ty].inner else {
            panic!("{what}: binding {} is not an array", b.name);
        };
        let elem = match module.types[base].inner {
            TypeInner::Scalar(s) if s.kind == ScalarKind::Float => Elem::F32,
            TypeInner::Scalar(s) if s.kind == ScalarKind::Uint => Elem::U32,
            TypeInner::Vector { scalar, .. } if scalar.kind == ScalarKind::Float => Elem::Vec4F32,
            ref t => panic!("{what}: binding {} holds {t:?}", b.name),
        };
        // The matmul's operands are bound as vec4 by its subgroup variant.
        let same = elem == b.elem || (def.name == "matmul" && elem == Elem::Vec4F32);
        assert!(
            same,
            "{what}: binding {} holds {elem:?}, the table says {:?}",
            b.name, b.elem
        );
        let offset_field = format!("{}_off", b.name);
        if b.access != Access::Unused && layout.field(&offset_field).is_none() {
            // Bound whole: only chunked datasets are.
            assert!(
                def.name.starts_with("gather"),
                "{what}: binding {} has no `{offset_field}` field",
                b.name
            );
        }
    }
}

#[test]
fn params_and_bindings_mirror_the_wgsl() {
    for def in ALL {
        let text = def.shader.text();
        let module = parse(def.name, &text);
        assert!(
            module.entry_points.iter().any(|e| e.name == def.name),
            "{}: no entry point of that name in shaders/{}.wgsl",
            def.name,
            def.shader.name
        );
        check_module(def.name, &module, def.params, def);
    }
    // The generated subgroup matmul in every operand layout.
    let matmul = &duel::kernels::matmul::MATMUL;
    for (class, layout) in CLASSES {
        let text =
            duel::gpu::matmul::subgroup_source(layout, duel::gpu::matmul::SgTile::from_env());
        let module = parse(class, &text);
        check_module(
            &format!("subgroup matmul ({class})"),
            &module,
            matmul.params,
            matmul,
        );
    }
}

#[test]
fn a_wrong_params_struct_is_caught() {
    // The check itself must fail on a mismatch: reflect a shader against another's layout.
    let (a, b) = (
        &duel::kernels::ema::EMA_UPDATE,
        &duel::kernels::bias::BIAS_BACKWARD,
    );
    let module = parse(a.name, &a.shader.text());
    let result = std::panic::catch_unwind(|| check_module("swap", &module, b.params, a));
    assert!(
        result.is_err(),
        "a mismatched layout passed the reflection check"
    );
}
