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
    assert!(err("classes = 3").contains("add conditional = true"));
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
    assert_eq!(gan.g.output(), 2);
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
    cfg.loss = LossName::Original;
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
    assert_eq!((gp.loss, gp.gp, gp.k), (LossName::Wasserstein, 10.0, 5));
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
    let sn = resolve("sngan", "mnist")
        .gan(784, Some((1, 28, 28)))
        .unwrap();
    assert_eq!(sn.d.layers[0], Layer::SpectralNorm);
    assert_eq!(sn.d.layers[1], Layer::Linear(1024));
    assert!(!sn.g.layers.contains(&Layer::SpectralNorm));
    assert!(
        sn.d.describe().contains("spectral norm"),
        "{}",
        sn.d.describe()
    );
    let wgan = resolve("wgan", "mnist");
    assert_eq!((wgan.clip, wgan.opt_d), (0.01, OptName::Rmsprop));
    let ttur = resolve("ttur", "mnist");
    assert_eq!(ttur.lr_d, 4.0 * ttur.lr_g);
    assert_eq!(resolve("lsgan", "grid25").loss, LossName::LeastSquares);
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
