//! The GAN training loop with checkpoints, shared by `mathnn gan train` and the GAN-comparison experiment.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use indicatif::ProgressBar;
use nn_core::gan::GanTrainer;

/// Trains `trainer` to its configured iteration count, calling `on_checkpoint` (which may record data in
/// `trainer.notes`) and then saving to `dir` every `checkpoint_every` iterations, at the end, and at
/// iteration 0 of a fresh run. Accumulates the training wall time in `notes.train_seconds`.
pub fn train_with_checkpoints(
    trainer: &mut GanTrainer,
    dir: &Path,
    bar: &ProgressBar,
    mut on_checkpoint: impl FnMut(&mut GanTrainer) -> Result<()>,
) -> Result<()> {
    let target = trainer.config().iterations;
    let every = trainer.config().checkpoint_every;
    bar.set_length(target as u64);
    bar.set_position(trainer.iteration() as u64);
    if !trainer.notes.is_object() {
        trainer.notes = serde_json::json!({ "train_seconds": 0.0 });
    }
    if trainer.iteration() == 0 {
        on_checkpoint(trainer)?;
        trainer.save(dir)?;
    }
    let mut clock = Instant::now();
    while trainer.iteration() < target {
        let log = trainer.step()?;
        bar.inc(1);
        bar.set_message(format!(
            "D {:.3} G {:.3}",
            log.critic_loss, log.generator_loss
        ));
        let it = trainer.iteration();
        if it == target || it.is_multiple_of(every) {
            let spent = trainer.notes["train_seconds"].as_f64().unwrap_or(0.0);
            trainer.notes["train_seconds"] = (spent + clock.elapsed().as_secs_f64()).into();
            on_checkpoint(trainer)?;
            trainer.save(dir)?;
            clock = Instant::now();
        }
    }
    Ok(())
}
