//! Experiment `classifier-baseline`: the talk's starting point — a deep network classifies handwritten
//! digits almost perfectly. LeNet-style CNN and a 784-512-512-10 MLP on MNIST (and LeNet on Fashion-MNIST
//! in the larger profiles), with test accuracy per epoch beside the classic reference numbers.

use anyhow::Result;
use nn_core::data::DatasetName;
use nn_core::models::ModelKind;
use nn_core::train::TrainConfig;

use crate::common::load_data_or_generated;
use crate::report::plot::{Series, line_chart};
use crate::reproduce::{Context, ExperimentResult, Figure, Profile, Row, run_dir};
use crate::runs::classifier::{ClassifierRun, RunMetrics, train_on};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "classifier-baseline";
pub const TITLE: &str = "a LeNet-style CNN and an MLP on MNIST";
/// The claim the experiment checks, as the report states it.
pub const CLAIM: &str = "Deep convolutional networks solve digit recognition: LeNet-5 reaches 0.95 % test error on MNIST (LeCun et al. 1998), far below fully connected networks; every later experiment starts from such a trained classifier.";

/// The typed `details` of the experiment's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierBaselineDetails {
    /// The metrics of every training run, in plan order.
    pub runs: Vec<RunMetrics>,
}

struct Plan {
    dataset: DatasetName,
    model: ModelKind,
    epochs: usize,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
    /// Reference test error from LeCun et al. (1998) / the MNIST page, for the closest classic model.
    reference: &'static str,
}

fn plans(profile: Profile) -> Vec<Plan> {
    let lenet_ref = "LeNet-5: 99.05% (0.95% error; LeCun et al. 1998)";
    let mlp_ref = "3-layer NN 500+150 HU: 97.05% (2.95% error; LeCun et al. 1998)";
    match profile {
        Profile::Smoke => vec![
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Mlp,
                epochs: 1,
                limit_train: Some(2000),
                limit_test: Some(1000),
                reference: mlp_ref,
            },
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Lenet,
                epochs: 1,
                limit_train: Some(2000),
                limit_test: Some(1000),
                reference: lenet_ref,
            },
        ],
        Profile::Quick => vec![
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Mlp,
                epochs: 3,
                limit_train: None,
                limit_test: None,
                reference: mlp_ref,
            },
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Lenet,
                epochs: 3,
                limit_train: None,
                limit_test: None,
                reference: lenet_ref,
            },
        ],
        Profile::Full => vec![
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Mlp,
                epochs: 10,
                limit_train: None,
                limit_test: None,
                reference: mlp_ref,
            },
            Plan {
                dataset: DatasetName::Mnist,
                model: ModelKind::Lenet,
                epochs: 10,
                limit_train: None,
                limit_test: None,
                reference: lenet_ref,
            },
            Plan {
                dataset: DatasetName::FashionMnist,
                model: ModelKind::Lenet,
                epochs: 10,
                limit_train: None,
                limit_test: None,
                reference: "—",
            },
            Plan {
                dataset: DatasetName::FashionMnist,
                model: ModelKind::VggSmall,
                epochs: 10,
                limit_train: None,
                limit_test: None,
                reference: "—",
            },
        ],
    }
}

/// Runs the experiment.
pub fn run(ctx: &Context) -> Result<ExperimentResult> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut runs = Vec::new();
    let mut provenances = Vec::new();
    for plan in plans(ctx.profile) {
        let data = load_data_or_generated(plan.dataset, ctx.data_dir.as_deref())?;
        let provenance = data.train.provenance.label();
        let real = data.train.provenance == nn_core::data::Provenance::Real;
        let dataset = if !real {
            DatasetName::Generated
        } else {
            plan.dataset
        };
        let run_name = format!("{dataset}-{}", plan.model);
        // Adam 1e-3, batch 64, constant rate, seed 0: `mathnn train`'s defaults.
        let run = ClassifierRun {
            dataset,
            model: plan.model,
            mlp_widths: vec![512, 512],
            train: TrainConfig {
                epochs: plan.epochs,
                ..TrainConfig::default()
            },
            limit_train: plan.limit_train,
            limit_test: plan.limit_test,
            out: run_dir(ctx, &run_name),
            force: false,
            device: ctx.device,
            quiet: ctx.quiet,
        };
        let outcome = train_on(&run, data)?;
        let m = &outcome.metrics;
        let acc = m.final_test_accuracy.unwrap_or(f64::NAN);
        rows.push(Row {
            quantity: format!(
                "{} test accuracy, {} ({} epochs, {} train images)",
                plan.model, plan.dataset, plan.epochs, m.train_images
            ),
            paper: if real {
                plan.reference.to_string()
            } else {
                "— (generated data)".into()
            },
            ours: format!("{:.2}%", 100.0 * acc),
            note: format!(
                "{:.1} s/epoch, {} threads, {provenance}",
                m.mean_train_seconds_per_epoch, m.threads
            ),
        });
        series.push(Series {
            name: run_name.clone(),
            points: m
                .epochs
                .iter()
                .filter_map(|e| e.test_accuracy.map(|a| (e.epoch as f64, a)))
                .collect(),
        });
        provenances.push(provenance);
        runs.push(m.clone());
    }
    let figure = "test_accuracy.svg";
    line_chart(
        &ctx.out.join(figure),
        "Test accuracy per epoch",
        "epoch",
        "test accuracy",
        &series,
    )?;
    provenances.sort();
    provenances.dedup();
    let details = ClassifierBaselineDetails { runs };
    Ok(ExperimentResult {
        name: NAME.into(),
        title: TITLE.into(),
        profile: ctx.profile,
        data: provenances.join(" + "),
        rows,
        figures: vec![Figure::new(
            figure,
            "Test accuracy after every epoch, one curve per trained network and data set.",
        )],
        notes: vec![
            "Adam (lr 1e-3, no weight decay), batch 64, seed 0; reference numbers are the classic LeCun et al. (1998) results for related but not identical models.".into(),
            "Rerunning resumes each training run from its checkpoint in runs/.".into(),
        ],
        seconds: 0.0,
        details: serde_json::to_value(&details)?,
    })
}
