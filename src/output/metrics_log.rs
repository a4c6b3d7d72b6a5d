//! A run's `metrics.csv` read back as named columns, and what each column is: which plot panel
//! and which TensorBoard group it belongs to. Columns are found by name, so one a trainer adds
//! later (FID, a critic estimate) shows up in the plot and in TensorBoard without changes here.

use std::path::Path;

use anyhow::{Context, Result};

use super::plot::{Panel, Series, write_training_plot};

/// The columns of a metrics log and its rows; a missing or unparsable field is NaN.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsTable {
    pub columns: Vec<String>,
    /// `rows[i][j]` is row i's value of `columns[j]`.
    pub rows: Vec<Vec<f64>>,
}

impl MetricsTable {
    /// Parses CSV text whose first line names the columns.
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else {
            return Self::default();
        };
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
        let rows = lines
            .map(|line| {
                let mut fields = line.split(',');
                (0..columns.len())
                    .map(|_| {
                        let field = fields.next().unwrap_or("").trim();
                        field.parse().unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect();
        MetricsTable { columns, rows }
    }

    /// `(x, column)` points with x the `step` column (or the row index without one).
    pub fn points(&self, column: usize) -> Vec<(f64, f64)> {
        let step = self.columns.iter().position(|c| c == "step");
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| (step.map_or(i as f64, |s| r[s]), r[column]))
            .collect()
    }
}

/// What a metrics column measures, which decides its panel and its TensorBoard group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The x axis, not a curve.
    Step,
    Loss,
    /// D's mean output on real and generated samples (a probability, or a critic's score).
    DOutput,
    Speed,
    WallClock,
    /// Anything else: a quality or mode-coverage metric, one panel each.
    Metric,
}

impl Kind {
    pub fn of(column: &str) -> Kind {
        match column {
            "step" => Kind::Step,
            "steps_per_s" => Kind::Speed,
            "wall_s" => Kind::WallClock,
            c if c.ends_with("_loss") => Kind::Loss,
            "d_real" | "d_fake" | "critic_real" | "critic_fake" | "wasserstein" => Kind::DOutput,
            _ => Kind::Metric,
        }
    }

    /// The TensorBoard tag prefix: TensorBoard groups scalars by what precedes the '/'.
    pub fn tensorboard_group(self) -> &'static str {
        match self {
            Kind::Step | Kind::WallClock => "time",
            Kind::Loss => "losses",
            Kind::DOutput => "D_outputs",
            Kind::Speed => "speed",
            Kind::Metric => "metrics",
        }
    }
}

/// A column's name as a reader knows it: "D(G(z))" rather than "d_fake".
pub fn display_name(column: &str) -> &str {
    match column {
        "d_loss" => "D loss",
        "g_loss" => "G loss",
        "d_real" => "D(x)",
        "d_fake" => "D(G(z))",
        "steps_per_s" => "it/s",
        "modes" => "modes captured",
        "hq_fraction" => "high-quality fraction",
        "kl_uniform" => "KL(modes ‖ uniform)",
        "wasserstein" => "W estimate",
        "penalty" => "gradient penalty",
        "grad_norm" => "‖∇D‖ at the penalised points",
        "fid" => "FID (digit classifier)",
        "kid" => "KID (digit classifier)",
        "legible" => "legible share (p ≥ 0.9)",
        "confidence" => "mean top-class probability",
        c => c,
    }
}

/// Which columns one panel draws.
#[derive(Clone, Debug, PartialEq)]
pub struct PanelSpec {
    pub title: String,
    pub y_label: String,
    pub columns: Vec<usize>,
    pub log_y: bool,
}

/// The panels of the training figure: losses, D's outputs, then one per metric column (their
/// scales differ: a mode count, a fraction, a divergence). Step, speed and wall-clock columns are
/// not drawn.
pub fn training_panels(table: &MetricsTable) -> Vec<PanelSpec> {
    let of_kind = |kind: Kind| -> Vec<usize> {
        let cols = table.columns.iter().enumerate();
        cols.filter(|(_, c)| Kind::of(c) == kind)
            .map(|(j, _)| j)
            .collect()
    };
    let mut specs = Vec::new();
    let losses = of_kind(Kind::Loss);
    if !losses.is_empty() {
        specs.push(PanelSpec {
            title: "losses".into(),
            y_label: "loss".into(),
            columns: losses,
            log_y: false,
        });
    }
    let outputs = of_kind(Kind::DOutput);
    if !outputs.is_empty() {
        // A critic's scores are not probabilities; say so when any leaves [0, 1].
        let in_unit = |&j: &usize| table.rows.iter().all(|r| !(r[j] < 0.0 || r[j] > 1.0));
        let y_label = if outputs.iter().all(in_unit) {
            "mean D (probability)"
        } else {
            "mean critic score"
        };
        specs.push(PanelSpec {
            title: "D's outputs".into(),
            y_label: y_label.into(),
            columns: outputs,
            log_y: false,
        });
    }
    for j in of_kind(Kind::Metric) {
        let column = &table.columns[j];
        specs.push(PanelSpec {
            title: display_name(column).into(),
            y_label: display_name(column).into(),
            columns: vec![j],
            // FID falls over orders of magnitude early in training.
            log_y: column == "fid",
        });
    }
    specs
}

/// Redraws the training figure at `png` (losses.png) from the metrics log at `csv`; a log with
/// no rows yet draws its panels empty, and without a log nothing is drawn.
pub fn write_training_plot_from_csv(csv: &Path, png: &Path) -> Result<()> {
    let text = match std::fs::read_to_string(csv) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()), // nothing logged yet
        r => r.with_context(|| format!("reading {}", csv.display()))?,
    };
    let table = MetricsTable::parse(&text);
    let specs = training_panels(&table);
    if specs.is_empty() {
        return Ok(());
    }
    let points: Vec<Vec<Vec<(f64, f64)>>> = specs
        .iter()
        .map(|s| s.columns.iter().map(|&j| table.points(j)).collect())
        .collect();
    let series: Vec<Vec<Series>> = specs
        .iter()
        .zip(&points)
        .map(|(s, pts)| {
            let names = s.columns.iter().map(|&j| display_name(&table.columns[j]));
            names.zip(pts).map(|(n, p)| (n, &p[..])).collect()
        })
        .collect();
    let panels: Vec<Panel> = specs
        .iter()
        .zip(&series)
        .map(|(s, series)| Panel {
            log_y: s.log_y,
            ..Panel::new(&s.title, &s.y_label, series)
        })
        .collect();
    write_training_plot(png, &panels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTS_HEADER: &str =
        "step,d_loss,g_loss,d_real,d_fake,steps_per_s,wall_s,modes,hq_fraction,kl_uniform";

    fn titles(table: &MetricsTable) -> Vec<String> {
        training_panels(table)
            .into_iter()
            .map(|p| p.title)
            .collect()
    }

    #[test]
    fn parse_reads_columns_and_marks_missing_fields_nan() {
        let t = MetricsTable::parse("step,d_loss,fid\n10,1.5,\n20,1.25,31.5\n\n30,x\n");
        assert_eq!(t.columns, ["step", "d_loss", "fid"]);
        assert_eq!(t.rows.len(), 3);
        assert!(t.rows[0][2].is_nan() && t.rows[2][1].is_nan() && t.rows[2][2].is_nan());
        assert_eq!(t.points(1)[1], (20.0, 1.25));
        assert_eq!(MetricsTable::parse(""), MetricsTable::default());
    }

    #[test]
    fn panels_group_columns_by_kind() {
        let images = MetricsTable::parse("step,d_loss,g_loss,d_real,d_fake,steps_per_s,wall_s\n");
        assert_eq!(titles(&images), ["losses", "D's outputs"]);
        let points = MetricsTable::parse(&format!("{POINTS_HEADER}\n10,1,1,0.5,0.5,9,1,3,0.5,0.2"));
        let specs = training_panels(&points);
        assert_eq!(
            titles(&points),
            [
                "losses",
                "D's outputs",
                "modes captured",
                "high-quality fraction",
                "KL(modes ‖ uniform)"
            ]
        );
        assert_eq!(specs[0].columns, [1, 2]);
        assert_eq!(specs[1].columns, [3, 4]);
        assert_eq!(specs[1].y_label, "mean D (probability)");
        // A column a trainer adds later gets its own panel; FID on a log axis.
        let fid = MetricsTable::parse("step,d_loss,g_loss,fid\n10,1,1,250");
        let specs = training_panels(&fid);
        assert_eq!(titles(&fid), ["losses", "FID (digit classifier)"]);
        assert!(specs[1].log_y && !specs[0].log_y);
        // Scores outside [0, 1] are a critic's, not probabilities.
        let critic = MetricsTable::parse("step,d_real,d_fake\n10,3.5,-2");
        assert_eq!(training_panels(&critic)[0].y_label, "mean critic score");
    }

    #[test]
    fn training_plot_from_csv_draws_a_panel_per_group() {
        let dir = std::env::temp_dir().join(format!("duel-metrics-plot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (csv, png) = (dir.join("metrics.csv"), dir.join("losses.png"));
        // No log yet: nothing drawn, no error.
        write_training_plot_from_csv(&csv, &png).unwrap();
        assert!(!png.exists());
        let mut text = format!("{POINTS_HEADER}\n");
        for i in 1..=100 {
            let x = f64::from(i);
            let kl = if i % 7 == 0 {
                "NaN".to_string()
            } else {
                format!("{}", 2.0 / x)
            };
            text += &format!(
                "{},{},{},0.5,0.4,100,{x},{},{},{kl}\n",
                i * 10,
                1.4 - x * 0.003,
                0.7 + x * 0.004,
                i.min(8),
                x / 100.0
            );
        }
        std::fs::write(&csv, text).unwrap();
        write_training_plot_from_csv(&csv, &png).unwrap();
        let img = image::open(&png).unwrap().to_rgb8();
        // Five panels: two rows of two, then one spanning the last row.
        assert_eq!(img.dimensions(), (1280, 3 * 380));
        for (x, y, w) in [
            (0, 0, 640),
            (640, 0, 640),
            (0, 380, 640),
            (640, 380, 640),
            (0, 760, 1280),
        ] {
            // Every panel's first curve is drawn in (about: lines are anti-aliased) the first
            // palette colour.
            let c = crate::output::plot::PALETTE[0];
            let curve_px = (y + 40..y + 300)
                .flat_map(|yy| (x + 80..x + w - 20).map(move |xx| (xx, yy)))
                .filter(|&(xx, yy)| crate::output::plot::near(img.get_pixel(xx, yy).0, c))
                .count();
            assert!(
                curve_px > 100,
                "panel at ({x}, {y}): {curve_px} curve pixels"
            );
        }
    }
}
