//! The configuration's unit tests.

use super::*;

#[test]
fn cli_overrides_file_overrides_preset() {
    let file = "preset = \"paper\"\nbatch = 32\nlr-d = 0.05\n";
    let mut cli = toml::Table::new();
    cli.insert("batch".into(), toml::Value::Integer(16));
    let cfg = TrainConfig::resolve(Some((file, "run.toml")), cli).unwrap();
    assert_eq!(cfg.preset, Preset::Paper);
    assert_eq!(cfg.batch, 16);
    assert_eq!(cfg.lr_d, 0.05);
    assert_eq!(
        cfg.opt_g,
        OptName::Sgd,
        "the paper preset's default survives"
    );
    let again = TrainConfig::from_toml(&cfg.to_toml(), "saved").unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn bad_options_are_named() {
    let err = |file: &str| {
        TrainConfig::resolve(Some((file, "f.toml")), toml::Table::new())
            .unwrap_err()
            .to_string()
    };
    assert!(err("preset = \"huge\"").contains("unknown preset"));
    assert!(err("batch = 0").contains("--batch must be at least 1"));
    assert!(err("lr-g = -1.0").contains("--lr-g"));
    assert!(err("bogus = 1").contains("bogus"));
    assert!(err("batch = \"x\"").contains("f.toml"));
    assert!(
        err("image-size = 100000").contains("--image-size 100000 is too large; use at most 1024")
    );
    assert!(
        err("conditional = true\npack = 2")
            .contains("--conditional judges each sample with its own class")
    );
    assert!(err("preset = \"dcgan\"\nclasses = 3").contains("add conditional = true"));
    assert!(
        err("conditional = true\nclasses = 2\nclass-names = [\"a\"]")
            .contains("class-names lists 1 names for 2 classes")
    );
    assert!(err("background = \"grey\"").contains("f.toml"));
}

#[test]
fn configs_written_before_background_and_conditional_still_load() {
    let mut cfg = TrainConfig::preset(Preset::Mlp, "mnist");
    let mut table = toml::Table::try_from(&cfg).unwrap();
    assert!(
        !table.contains_key("conditional"),
        "unset, it is not written"
    );
    table.remove("background");
    let old = TrainConfig::from_toml(&toml::to_string(&table).unwrap(), "old").unwrap();
    assert_eq!(old.background, Background::White);
    assert!(!old.conditional);
    cfg.background = Background::Black;
    cfg.conditional = true;
    cfg.classes = 2;
    cfg.class_names = vec!["ant".into(), "zebra".into()];
    let again = TrainConfig::from_toml(&cfg.to_toml(), "saved").unwrap();
    assert_eq!(again, cfg);
    // A conditional run's networks: the MLP G concatenates a class embedding, D projects.
    let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
    assert_eq!(
        gan.g.layers[0],
        Layer::ClassEmbedding { classes: 2, dim: 2 }
    );
    assert_eq!(gan.d.layers.last(), Some(&Layer::Projection { classes: 2 }));
    // The DCGAN G's batch norms become conditional.
    cfg.preset = Preset::Dcgan;
    let gan = cfg.gan(784, Some((1, 28, 28))).unwrap();
    assert!(!gan.g.layers.contains(&Layer::BatchNorm));
    assert_eq!(
        gan.g
            .layers
            .iter()
            .filter(|l| **l == Layer::ConditionalBatchNorm { classes: 2 })
            .count(),
        2
    );
    assert_eq!(gan.classes(), Some(2));
}

#[test]
fn two_d_sets_default_to_the_small_preset() {
    let mut cli = toml::Table::new();
    cli.insert("dataset".into(), toml::Value::String("ring8".into()));
    let cfg = TrainConfig::resolve(None, cli).unwrap();
    assert_eq!(cfg.preset, Preset::Small);
    let gan = cfg.gan(2, None).unwrap();
    assert_eq!(gan.g.build("g").unwrap().output(), 2);
    gan.validate().unwrap();
}

#[test]
fn configs_written_before_the_objectives_load_with_the_original_loss() {
    // A saved config of the version before issue 11: none of loss, gp, r1, clip, sn.
    let mut cfg = TrainConfig::preset(Preset::Mlp, "mnist");
    let mut table = toml::Table::try_from(&cfg).unwrap();
    for k in ["loss", "gp", "r1", "clip", "sn"] {
        assert!(table.remove(k).is_some(), "{k} is not saved");
    }
    let old = TrainConfig::from_toml(&toml::to_string(&table).unwrap(), "old").unwrap();
    cfg.loss = Loss::Original;
    assert_eq!(old, cfg);
    assert_eq!(
        old.gan(784, Some((1, 28, 28))).unwrap().objective,
        Objective::default()
    );
}

#[test]
fn objective_presets_pick_the_model_by_dataset_and_set_their_papers_options() {
    let resolve = |preset: &str, dataset: &str| {
        let mut cli = toml::Table::new();
        cli.insert("preset".into(), toml::Value::String(preset.into()));
        cli.insert("dataset".into(), toml::Value::String(dataset.into()));
        TrainConfig::resolve(None, cli).unwrap()
    };
    let gp = resolve("wgan-gp", "mnist");
    assert_eq!(
        (gp.beta1, gp.beta2, gp.lr_d),
        (0.0, 0.9, 1e-4),
        "the paper's"
    );
    let gp = resolve("wgan-gp", "ring8");
    assert_eq!((gp.loss, gp.gp, gp.k), (Loss::Wasserstein, 10.0, 5));
    assert_eq!(
        (gp.beta1, gp.beta2, gp.lr_d),
        (0.5, 0.9, 1e-3),
        "the 2D sets' rate"
    );
    let gan = gp.gan(2, None).unwrap();
    assert_eq!(
        gan.d.layers[0],
        Layer::Linear(128),
        "the small model on 2D sets"
    );
    assert_eq!(gan.objective.penalty().unwrap().1, 10.0);
    let sn = resolve("sngan", "mnist");
    assert_eq!(sn.model, Some(Preset::Dcgan), "the images' default model");
    let sn = sn.gan(784, Some((1, 28, 28))).unwrap();
    assert_eq!(sn.d.layers[0], Layer::SpectralNorm);
    assert!(
        matches!(sn.d.layers[1], Layer::Conv2d { .. }),
        "{:?}",
        sn.d.layers
    );
    assert!(
        !sn.d.layers.iter().any(|l| matches!(l, Layer::BatchNorm)),
        "a spectrally normalised critic drops batch norm: {:?}",
        sn.d.layers
    );
    assert!(!sn.g.layers.contains(&Layer::SpectralNorm));
    let sn_d = sn.d.build("d").unwrap().describe();
    assert!(sn_d.contains("spectral norm"), "{sn_d}");
    let wgan = resolve("wgan", "mnist");
    assert_eq!((wgan.clip, wgan.opt_d), (0.01, OptName::Rmsprop));
    let ttur = resolve("ttur", "mnist");
    assert_eq!(ttur.lr_d, 4.0 * ttur.lr_g);
    assert_eq!(resolve("lsgan", "grid25").loss, Loss::LeastSquares);
}

#[test]
fn progan_adds_the_drift_term_and_others_do_not() {
    let resolve = |preset: &str| {
        let mut cli = toml::Table::new();
        cli.insert("preset".into(), toml::Value::String(preset.into()));
        cli.insert("dataset".into(), toml::Value::String("some/folder".into()));
        TrainConfig::resolve(None, cli).unwrap()
    };
    let progan = resolve("progan");
    assert_eq!((progan.gp, progan.drift), (10.0, 0.001), "Karras et al.'s");
    assert_eq!(
        progan
            .gan(64 * 64 * 3, Some((3, 64, 64)))
            .unwrap()
            .objective
            .drift,
        0.001
    );
    assert_eq!(resolve("wgan-gp").drift, 0.0);
    assert!(
        !resolve("wgan-gp").to_toml().contains("drift"),
        "only written when set"
    );
    let mut cli = toml::Table::new();
    cli.insert("drift".into(), toml::Value::Float(-1.0));
    let err = TrainConfig::resolve(None, cli).unwrap_err().to_string();
    assert!(err.contains("--drift must be 0 (off) or positive"), "{err}");
}

#[test]
fn model_picks_the_network_of_an_objective_preset() {
    let resolve = |pairs: &[(&str, toml::Value)]| {
        let cli: toml::Table = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        TrainConfig::resolve(None, cli)
    };
    let s = |v: &str| toml::Value::String(v.into());
    // The MLP on request, with the objective paper's settings.
    let mlp = resolve(&[("preset", s("wgan-gp")), ("model", s("mlp"))]).unwrap();
    assert_eq!((mlp.gp, mlp.k, mlp.lr_d), (10.0, 5, 1e-4));
    let gan = mlp.gan(784, Some((1, 28, 28))).unwrap();
    assert_eq!(gan.d.layers[0], Layer::Linear(1024));
    // An image folder at --image-size 32 gets dcgan32, and the config records it.
    let at32 = resolve(&[
        ("preset", s("lsgan")),
        ("dataset", s("some/folder")),
        ("image-size", toml::Value::Integer(32)),
    ])
    .unwrap();
    assert_eq!((at32.model, at32.image_size), (Some(Preset::Dcgan32), 32));
    assert!(at32.to_toml().contains("model = \"dcgan32\""));
    let explicit = resolve(&[("preset", s("ttur")), ("model", s("dcgan64"))]).unwrap();
    assert_eq!(
        (explicit.architecture(), explicit.image_size),
        (Preset::Dcgan64, 64)
    );
    // A config written before --model existed keeps training what it trained: the mlp.
    let mut old = mlp.clone();
    old.model = None;
    assert_eq!(old.architecture(), Preset::Mlp);
    let old = TrainConfig::from_toml(&old.to_toml(), "old").unwrap();
    assert_eq!(old.architecture(), Preset::Mlp);
    // Nonsense is refused with what to do.
    let err = resolve(&[("preset", s("dcgan")), ("model", s("mlp"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("drop --model"), "{err}");
    let err = resolve(&[("preset", s("wgan")), ("model", s("progan"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("choose one of mlp"), "{err}");
    let err = resolve(&[("preset", s("wgan")), ("model", s("cnn"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown model"), "{err}");
}

#[test]
fn a_penalty_through_a_layer_without_a_tangent_pass_is_refused() {
    let mut cli = toml::Table::new();
    cli.insert("preset".into(), toml::Value::String("paper".into()));
    cli.insert("gp".into(), toml::Value::Float(10.0));
    let err = TrainConfig::resolve(None, cli).unwrap_err().to_string();
    assert!(
        err.contains("Maxout") && err.contains("gradient penalty"),
        "{err}"
    );
    // A smooth activation in the critic has a second-derivative term duel does not compute.
    let mut cfg = TrainConfig::preset(Preset::WganGp, "ring8")
        .gan(2, None)
        .unwrap();
    cfg.d.layers[1] = Layer::Act(Activation::Tanh);
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("Tanh") && err.contains("second"), "{err}");
}

#[test]
fn the_image_folder_presets_augment_and_a_resumed_run_keeps_its_choice() {
    let resolve = |preset: &str, augment: Option<&str>| {
        let mut cli = toml::Table::new();
        cli.insert("preset".into(), toml::Value::String(preset.into()));
        cli.insert("dataset".into(), toml::Value::String("some/folder".into()));
        if let Some(a) = augment {
            cli.insert("augment".into(), toml::Value::String(a.into()));
        }
        TrainConfig::resolve(None, cli).unwrap()
    };
    assert_eq!(resolve("dcgan32", None).augment, Policy::ALL);
    assert_eq!(resolve("dcgan64", None).augment, Policy::ALL);
    assert_eq!(resolve("dcgan", None).augment, Policy::NONE);
    assert_eq!(resolve("sagan32", None).augment, Policy::ALL);
    assert_eq!(resolve("progan", None).augment, Policy::NONE);
    let plain = resolve("dcgan32", Some("none"));
    assert_eq!(plain.augment, Policy::NONE);
    // Resuming re-resolves the saved config over the preset's defaults (main.rs): "none" must
    // survive that, and so must a config written before the option existed.
    let saved =
        toml::Table::try_from(TrainConfig::from_toml(&plain.to_toml(), "saved").unwrap()).unwrap();
    assert_eq!(
        TrainConfig::resolve(None, saved).unwrap().augment,
        Policy::NONE
    );
    let mut old: toml::Table = toml::from_str(&plain.to_toml()).unwrap();
    old.remove("augment");
    let old = TrainConfig::from_toml(&toml::to_string(&old).unwrap(), "old").unwrap();
    let table = toml::Table::try_from(old).unwrap();
    assert_eq!(
        TrainConfig::resolve(None, table).unwrap().augment,
        Policy::NONE
    );
}

#[test]
fn progan_trains_to_the_end_of_its_growth_unless_told_otherwise() {
    let resolve = |pairs: &[(&str, toml::Value)]| {
        let mut cli = toml::Table::new();
        cli.insert("preset".into(), toml::Value::String("progan".into()));
        cli.insert("dataset".into(), toml::Value::String("some/folder".into()));
        for (k, v) in pairs {
            cli.insert((*k).into(), v.clone());
        }
        TrainConfig::resolve(None, cli).unwrap()
    };
    let int = toml::Value::Integer;
    // 64×64: 4×4, then fade-in + stabilisation for 8, 16, 32 and 64: nine phases of 40,000.
    assert_eq!(
        resolve(&[]).batch,
        16,
        "Karras et al.'s minibatch up to 128×128"
    );
    assert_eq!(resolve(&[]).steps, 9 * 40_000 / 16);
    assert_eq!(
        resolve(&[("batch", int(64))]).steps,
        (9 * 40_000u64).div_ceil(64)
    );
    assert_eq!(
        resolve(&[("batch", int(16)), ("phase-images", int(80_000))]).steps,
        9 * 80_000 / 16
    );
    assert_eq!(
        resolve(&[("image-size", int(32)), ("batch", int(12))]).steps,
        (7 * 40_000u64).div_ceil(12)
    );
    assert_eq!(resolve(&[("steps", int(123))]).steps, 123, "--steps wins");
    let mut cli = toml::Table::new();
    cli.insert("dataset".into(), toml::Value::String("some/folder".into()));
    cli.insert("image-size".into(), int(64));
    assert_eq!(
        TrainConfig::resolve(None, cli).unwrap().steps,
        6000,
        "other presets keep theirs"
    );
}

/// Each option is one declaration: every `duel train` option of `TrainConfig` is a
/// `config.toml` key of the same name, and a command line's options come back as those keys
/// with the values typed.
#[test]
fn every_option_is_a_config_key_and_parses_once() {
    use clap::{Args, Command};
    let cmd = TrainConfig::augment_args(Command::new("train"));
    let options: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_long().expect("every option is long").to_string())
        .collect();
    // Every field the config writes (with everything set) is an option, but the class list
    // found in the data.
    let mut full = TrainConfig::resolve(None, toml::Table::new()).unwrap();
    full.model = Some(Preset::Mlp);
    full.split = crate::data::cifar::Split::Test;
    (
        full.skip_bad_images,
        full.conditional,
        full.drift,
        full.eval_every,
    ) = (true, true, 0.1, 5);
    (full.momentum_final, full.limit, full.width) = (Some(0.7), Some(9), Some(8));
    (full.eval_samples, full.phase_images) = (Some(10), Some(100));
    let keys: Vec<String> = toml::Table::try_from(&full)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for key in &keys {
        assert!(options.contains(key), "config key {key} is not an option");
    }
    for o in &options {
        assert!(keys.contains(o), "option --{o} is not a config key");
    }
    let m = cmd
        .try_get_matches_from([
            "train",
            "--lr-d",
            "0.5",
            "--sn",
            "d",
            "--augment",
            "color",
            "--k",
            "5",
            "--conditional",
            "--split",
            "train",
        ])
        .unwrap();
    let got = passed_options(&m).unwrap();
    let want: toml::Table = toml::from_str(
        "lr-d = 0.5\nsn = \"d\"\naugment = \"color\"\nk = 5\nconditional = true\nsplit = \"train\"",
    )
    .unwrap();
    assert_eq!(got, want);
}

/// Presets are data: every `--preset` name has exactly one definition in `PRESETS`, and the
/// classes the command line relies on follow from it.
#[test]
fn every_preset_is_defined_once() {
    use clap::ValueEnum;
    for p in Preset::value_variants() {
        let defs = presets::PRESETS.iter().filter(|d| d.preset == *p).count();
        assert_eq!(defs, 1, "{} has {defs} definitions", p.name());
        let def = p.def();
        let objective = def.kind == presets::Kind::Objective;
        assert_eq!(
            objective,
            def.networks == presets::Networks::OfModel,
            "{}: an objective preset, and only one, trains the --model network",
            p.name()
        );
        let cfg = TrainConfig::preset(*p, "mnist");
        assert_eq!(cfg.preset, *p);
        if let Some(side) = def.side {
            assert_eq!(cfg.image_size, side, "{}", p.name());
        }
    }
    assert_eq!(presets::PRESETS.len(), Preset::value_variants().len());
}

/// `duel train` with no options trains the `digits` recipe on the embedded digits: dcgan's
/// networks, class-conditional, 10,000 steps; dcgan (the papers' DCGAN, the default before the
/// study) stays one option away, and other 28×28 data keeps dcgan as its default.
#[test]
fn the_default_run_is_the_conditional_digits_recipe() {
    let resolve = |pairs: &[(&str, &str)]| {
        let mut cli = toml::Table::new();
        for (k, v) in pairs {
            cli.insert(k.to_string(), toml::Value::String(v.to_string()));
        }
        TrainConfig::resolve(None, cli).unwrap()
    };
    let default = resolve(&[]);
    assert_eq!(default.preset, Preset::Digits);
    assert!(default.conditional);
    assert_eq!((default.steps, default.batch), (10_000, 64));
    let dcgan = resolve(&[("preset", "dcgan")]);
    assert!(!dcgan.conditional);
    assert_eq!(dcgan.steps, 6_000);
    // The same networks, the generator's batch norms conditional on the class.
    let (mut plain, mut cond) = (dcgan.clone(), default.clone());
    (plain.classes, cond.classes) = (10, 10);
    let g = cond.gan(784, Some((1, 28, 28))).unwrap().g;
    let count = |layers: &[Layer], l: &Layer| layers.iter().filter(|x| *x == l).count();
    assert_eq!(
        count(&g.layers, &Layer::ConditionalBatchNorm { classes: 10 }),
        2
    );
    plain.conditional = true;
    assert_eq!(plain.gan(784, Some((1, 28, 28))).unwrap().g, g);
    let idx = resolve(&[("dataset", "digits-28.idx")]);
    assert_eq!(idx.preset, Preset::Dcgan, "a user's 28×28 IDX file: dcgan");
}
