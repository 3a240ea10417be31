//! [`GanTrainer`]: seeded GAN / WGAN / WGAN-GP training with atomic checkpoints and exact resume.
//!
//! One *iteration* is `n_critic` critic updates followed by one generator update (Arjovsky et al.'s and
//! Gulrajani et al.'s Algorithm 1; the non-saturating GAN uses `n_critic = 1`). Every random draw is a
//! function of `(seed, iteration, critic step)` alone: real batches walk through seeded per-epoch
//! permutations of the data by a stored batch counter, latent codes and the penalty's `ε` come from
//! [`splitmix64`]-derived seeds. Resuming from a checkpoint therefore continues **bit-identically** with
//! the uninterrupted run on the same machine and thread count.
//!
//! Checkpoint directory: `checkpoint-it<iteration>.safetensors` (generator `g.*`, critic `d.*`, both
//! optimisers' state `g.optim.*`, `d.optim.*`), written first, then `state.json` (config, iteration, batch
//! counter, optimiser step counts, loss history, training wall time, caller notes such as a metric history) as the commit
//! point; older tensor files are removed after the commit.
//!
//! ```
//! use candle_core::Device;
//! use nn_core::data::generated::generated_digits;
//! use nn_core::gan::{GanArch, GanConfig, GanLoss, GanTrainer};
//!
//! let data = generated_digits(64, 0).unwrap();
//! let config = GanConfig { batch_size: 16, iterations: 2, ..GanConfig::new(GanLoss::Gan, GanArch::Mlp) };
//! let mut trainer = GanTrainer::new(config, &data.images, &Device::Cpu)?;
//! trainer.step()?;
//! assert_eq!(trainer.iteration(), 1);
//! assert_eq!(trainer.generate(3, 0)?.dims(), &[3, 1, 28, 28]);
//! # Ok::<(), nn_core::NnError>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    load_into_varmap, load_tensors, read_json, save_tensors, varmap_tensors, write_json_atomic,
};
use crate::data::permutation;
use crate::gan::losses::{
    GanLoss, clip_weights, gradient_penalty, ns_critic_loss, ns_generator_loss, wgan_critic_loss,
    wgan_generator_loss,
};
use crate::gan::models::{Critic, GanArch, Generator, IMAGE_SIDE};
use crate::grad::seeded_normal;
use crate::models::SeededVarMap;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::progress::Progress;
use crate::{NnError, Result};

/// Name of the commit-point file in a checkpoint directory.
pub const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Streams of [`draw_seed`].
const STREAM_CRITIC_Z: u64 = 1;
const STREAM_EPS: u64 = 2;
const STREAM_GENERATOR_Z: u64 = 3;
const STREAM_FIXED: u64 = 4;
const STREAM_PERMUTATION: u64 = 5;
const STREAM_INIT_G: u64 = 6;
const STREAM_INIT_D: u64 = 7;

/// One SplitMix64 step, used to derive independent seeds (see [`crate::seed`]).
pub use crate::seed::splitmix64;

/// The seed of draw `(a, b)` of `stream` in a run seeded `seed`.
fn draw_seed(seed: u64, stream: u64, a: u64, b: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407)) ^ a) ^ b)
}

/// Every hyper-parameter of a GAN run. [`GanConfig::new`] gives each loss its paper recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// The objective.
    pub loss: GanLoss,
    /// The generator/critic pair.
    pub arch: GanArch,
    /// Latent dimension (default 100 for the MLP, 128 for the DCGAN pair).
    pub latent_dim: usize,
    /// DCGAN width `DIM` (default 32; unused by the MLP).
    pub dim: usize,
    /// Images per batch, for real and generated batches alike (default 64).
    pub batch_size: usize,
    /// Critic updates per generator update (default 1 for GAN, 5 for WGAN and WGAN-GP).
    pub n_critic: usize,
    /// Gradient-penalty weight λ (default 10; WGAN-GP only).
    pub gp_lambda: f64,
    /// Weight-clipping bound c (default 0.01; WGAN only).
    pub clip: f64,
    /// Generator optimiser (GAN: Adam(2e-4, β = (0.5, 0.999)); WGAN: RMSProp(5e-5); WGAN-GP:
    /// Adam(1e-4, β = (0.5, 0.9))).
    pub g_optimizer: OptimizerConfig,
    /// Critic optimiser (same defaults as the generator's).
    pub d_optimizer: OptimizerConfig,
    /// Generator iterations to train (default 1000). May be raised when resuming.
    pub iterations: usize,
    /// Checkpoint every this many iterations (default 200; the last iteration is always saved).
    pub checkpoint_every: usize,
    /// Record losses every this many iterations (default 10).
    pub log_every: usize,
    /// Number of fixed latent codes for samples across training (default 64).
    pub samples: usize,
    /// Seed of the weights and of every random draw (default 0).
    pub seed: u64,
    /// Batch-normalise the MLP generator's hidden layers 2–4 (default: on for the non-saturating GAN
    /// with the MLP pair — its recipe, without which it collapses — off otherwise; see
    /// [`crate::gan::models`]). Not available for the DCGAN pair.
    #[serde(default)]
    pub generator_batch_norm: bool,
}

impl GanConfig {
    /// The recipe of `loss` for `arch` (spec §7: CPU MLP variant; WGAN-GP official MNIST code; WGAN
    /// paper), every other field at its default.
    pub fn new(loss: GanLoss, arch: GanArch) -> Self {
        let adam = |lr: f64, beta2: f64| OptimizerConfig::Adam {
            lr,
            beta1: 0.5,
            beta2,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let (opt, n_critic) = match loss {
            GanLoss::Gan => (adam(2e-4, 0.999), 1),
            GanLoss::Wgan => (OptimizerConfig::rmsprop(5e-5), 5),
            GanLoss::WganGp => (adam(1e-4, 0.9), 5),
        };
        GanConfig {
            loss,
            arch,
            latent_dim: match arch {
                GanArch::Mlp => 100,
                GanArch::Dcgan => 128,
            },
            dim: 32,
            batch_size: 64,
            n_critic,
            gp_lambda: 10.0,
            clip: 0.01,
            g_optimizer: opt.clone(),
            d_optimizer: opt,
            iterations: 1000,
            checkpoint_every: 200,
            log_every: 10,
            samples: 64,
            seed: 0,
            generator_batch_norm: loss == GanLoss::Gan && arch == GanArch::Mlp,
        }
    }

    /// Checks every field once.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("latent_dim", self.latent_dim),
            ("dim", self.dim),
            ("batch_size", self.batch_size),
            ("n_critic", self.n_critic),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
            ("samples", self.samples),
        ] {
            if v == 0 {
                return Err(NnError::invalid(name, "must be at least 1"));
            }
        }
        if self.generator_batch_norm && self.arch == GanArch::Dcgan {
            return Err(NnError::invalid(
                "generator_batch_norm",
                "batch norm is implemented for the MLP generator only",
            ));
        }
        if self.loss == GanLoss::WganGp && !(self.gp_lambda > 0.0 && self.gp_lambda.is_finite()) {
            return Err(NnError::invalid(
                "gp_lambda",
                format!("must be a finite number > 0, got {}", self.gp_lambda),
            ));
        }
        if self.loss == GanLoss::Wgan && !(self.clip > 0.0 && self.clip.is_finite()) {
            return Err(NnError::invalid(
                "clip",
                format!("must be a finite number > 0, got {}", self.clip),
            ));
        }
        self.g_optimizer.validate()?;
        self.d_optimizer.validate()
    }

    /// Whether a checkpoint written under `self` can continue under `other` (equal up to `iterations`,
    /// `checkpoint_every` and `log_every`).
    fn resumable_as(&self, other: &GanConfig) -> bool {
        let norm = |c: &GanConfig| GanConfig {
            iterations: 0,
            checkpoint_every: 1,
            log_every: 1,
            ..c.clone()
        };
        norm(self) == norm(other)
    }
}

/// Losses of one iteration (the last critic update's critic values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanLog {
    /// Iterations completed (1-based).
    pub iteration: usize,
    /// Critic loss (including `λ·penalty` for WGAN-GP).
    pub critic_loss: f64,
    /// Generator loss.
    pub generator_loss: f64,
    /// Gradient penalty (WGAN-GP only).
    pub penalty: Option<f64>,
    /// `E D(x) − E D(G(z))` on the last critic batch: the critic's Wasserstein estimate (WGANs only).
    pub wasserstein: Option<f64>,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct GanState {
    version: u32,
    config: GanConfig,
    iteration: usize,
    real_batches: u64,
    g_steps: u64,
    d_steps: u64,
    tensors: String,
    history: Vec<GanLog>,
    notes: serde_json::Value,
    /// Wall time spent in training steps, resumes included (older checkpoints kept it in
    /// `notes.train_seconds`).
    #[serde(default)]
    train_seconds: Option<f64>,
}

/// A GAN in training: generator, critic, their optimisers, the data and the position in the run.
pub struct GanTrainer {
    config: GanConfig,
    data: Tensor,
    generator: Generator,
    critic: Critic,
    g_vars: VarMap,
    d_vars: VarMap,
    g_opt: Optimizer,
    d_opt: Optimizer,
    iteration: usize,
    real_batches: u64,
    perm: Option<(u64, Vec<u32>)>,
    history: Vec<GanLog>,
    /// Caller data saved with every checkpoint and restored on resume (e.g. a metric history), one JSON
    /// object read and written through [`GanTrainer::note`] and [`GanTrainer::set_note`].
    notes: serde_json::Map<String, serde_json::Value>,
    train_seconds: f64,
}

fn check_data(data: &Tensor, batch_size: usize) -> Result<()> {
    match data.dims() {
        [n, 1, IMAGE_SIDE, IMAGE_SIDE] if *n >= batch_size => Ok(()),
        dims => Err(NnError::Shape {
            context: "GAN training images".into(),
            expected: format!(
                "[N, 1, {IMAGE_SIDE}, {IMAGE_SIDE}] with N ≥ batch_size = {batch_size}"
            ),
            got: format!("{dims:?}"),
        }),
    }
}

/// Builds the generator of `config` (weights from `config.seed`) in a fresh `VarMap`.
pub fn build_generator(config: &GanConfig, device: &Device) -> Result<(VarMap, Generator)> {
    let vars = VarMap::new();
    let vb = SeededVarMap::var_builder(
        &vars,
        draw_seed(config.seed, STREAM_INIT_G, 0, 0),
        DType::F32,
        device,
    );
    let g = Generator::new(
        config.arch,
        config.latent_dim,
        config.dim,
        config.generator_batch_norm,
        vb,
    )?;
    Ok((vars, g))
}

fn build_critic(config: &GanConfig, device: &Device) -> Result<(VarMap, Critic)> {
    let vars = VarMap::new();
    let vb = SeededVarMap::var_builder(
        &vars,
        draw_seed(config.seed, STREAM_INIT_D, 0, 0),
        DType::F32,
        device,
    );
    let d = Critic::new(config.arch, config.dim, vb)?;
    Ok((vars, d))
}

fn prefixed(
    tensors: HashMap<String, Tensor>,
    prefix: &str,
) -> impl Iterator<Item = (String, Tensor)> {
    tensors
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), v))
}

fn strip_prefix(tensors: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
        .collect()
}

/// Generator images for `z` in batches of at most 500 of nearly equal size (so that no batch of a
/// batch-normalised generator is left with a single code), detached.
fn generate_from(generator: &Generator, z: &Tensor) -> Result<Tensor> {
    let n = z.dims()[0];
    let batches = n.div_ceil(500);
    let mut parts = Vec::new();
    let mut start = 0;
    for b in 0..batches {
        let len = n / batches + usize::from(b < n % batches);
        parts.push(generator.forward(&z.narrow(0, start, len)?)?.detach());
        start += len;
    }
    if parts.is_empty() {
        return Ok(Tensor::zeros(
            (0, 1, IMAGE_SIDE, IMAGE_SIDE),
            DType::F32,
            z.device(),
        )?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Latent codes of `generate(n, seed)`: `n × latent_dim` standard normals from `seed`.
pub fn latent_codes(latent_dim: usize, n: usize, seed: u64, device: &Device) -> Result<Tensor> {
    seeded_normal(&[n, latent_dim], DType::F32, device, seed)
}

impl GanTrainer {
    /// A fresh run of `config` on `data` (`[N, 1, 28, 28]`, values in `[0, 1]`, `N ≥ batch_size`).
    pub fn new(config: GanConfig, data: &Tensor, device: &Device) -> Result<Self> {
        config.validate()?;
        check_data(data, config.batch_size)?;
        let (g_vars, generator) = build_generator(&config, device)?;
        let (d_vars, critic) = build_critic(&config, device)?;
        let g_opt = Optimizer::new(config.g_optimizer.clone(), &g_vars)?;
        let d_opt = Optimizer::new(config.d_optimizer.clone(), &d_vars)?;
        Ok(Self {
            data: data.to_dtype(DType::F32)?.to_device(device)?,
            config,
            generator,
            critic,
            g_vars,
            d_vars,
            g_opt,
            d_opt,
            iteration: 0,
            real_batches: 0,
            perm: None,
            history: Vec::new(),
            notes: serde_json::Map::new(),
            train_seconds: 0.0,
        })
    }

    /// Resumes the run in `dir` if it holds a checkpoint (whose config must equal `config` up to
    /// `iterations`, `checkpoint_every` and `log_every`), else starts a fresh one.
    pub fn resume_or_new(
        config: GanConfig,
        data: &Tensor,
        device: &Device,
        dir: &Path,
    ) -> Result<Self> {
        let mut trainer = Self::new(config, data, device)?;
        let state_path = dir.join(STATE_FILE);
        if !state_path.exists() {
            return Ok(trainer);
        }
        let state: GanState = read_json(&state_path)?;
        if state.version != STATE_VERSION {
            return Err(NnError::Checkpoint {
                path: state_path,
                reason: format!("state version {} (expected {STATE_VERSION})", state.version),
            });
        }
        if !state.config.resumable_as(&trainer.config) {
            return Err(NnError::Checkpoint {
                path: state_path,
                reason: format!(
                    "was written for a different configuration ({} {} seed {}); use another directory \
                     or the same settings",
                    state.config.loss.as_str(),
                    state.config.arch.as_str(),
                    state.config.seed
                ),
            });
        }
        let tpath = dir.join(&state.tensors);
        let tensors = load_tensors(&tpath, device)?;
        load_into_varmap(&trainer.g_vars, &tensors, "g.", &tpath)?;
        load_into_varmap(&trainer.d_vars, &tensors, "d.", &tpath)?;
        let bad = |e: NnError| NnError::Checkpoint {
            path: tpath.clone(),
            reason: e.to_string(),
        };
        trainer
            .g_opt
            .load_state(&strip_prefix(&tensors, "g."), state.g_steps)
            .map_err(bad)?;
        trainer
            .d_opt
            .load_state(&strip_prefix(&tensors, "d."), state.d_steps)
            .map_err(bad)?;
        trainer.iteration = state.iteration;
        trainer.real_batches = state.real_batches;
        trainer.history = state.history;
        trainer.train_seconds = state
            .train_seconds
            .or_else(|| state.notes.get("train_seconds").and_then(|v| v.as_f64()))
            .unwrap_or(0.0);
        trainer.notes = match state.notes {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(notes) => notes,
            other => {
                return Err(NnError::Checkpoint {
                    path: state_path,
                    reason: format!("`notes` is not a JSON object: {other}"),
                });
            }
        };
        Ok(trainer)
    }

    /// The configuration.
    pub fn config(&self) -> &GanConfig {
        &self.config
    }

    /// Sets the iteration target (resuming a finished run with a larger budget).
    pub fn set_iterations(&mut self, iterations: usize) {
        self.config.iterations = iterations;
    }

    /// Iterations completed.
    pub fn iteration(&self) -> usize {
        self.iteration
    }

    /// Logged losses (every `log_every` iterations).
    pub fn history(&self) -> &[GanLog] {
        &self.history
    }

    /// The generator.
    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// The critic.
    pub fn critic(&self) -> &Critic {
        &self.critic
    }

    /// The generator's and the critic's variables.
    pub fn variables(&self) -> (&VarMap, &VarMap) {
        (&self.g_vars, &self.d_vars)
    }

    fn device(&self) -> &Device {
        self.data.device()
    }

    /// The next real batch: consecutive slices of a seeded per-epoch permutation (last partial slice
    /// dropped), located by the batch counter alone.
    fn next_real_batch(&mut self) -> Result<Tensor> {
        let n = self.data.dims()[0];
        let bs = self.config.batch_size;
        let per_epoch = (n / bs) as u64;
        let (epoch, j) = (
            self.real_batches / per_epoch,
            (self.real_batches % per_epoch) as usize,
        );
        if self.perm.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let seed = draw_seed(self.config.seed, STREAM_PERMUTATION, epoch, 0);
            let p = permutation(n, seed).into_iter().map(|i| i as u32).collect();
            self.perm = Some((epoch, p));
        }
        let idx = &self
            .perm
            .as_ref()
            .map(|(_, p)| p)
            .ok_or_else(|| NnError::invalid("perm", "unset"))?[j * bs..(j + 1) * bs];
        let idx = Tensor::from_slice(idx, bs, self.device())?;
        self.real_batches += 1;
        Ok(self.data.index_select(&idx, 0)?)
    }

    fn noise(&self, stream: u64, step: u64) -> Result<Tensor> {
        let seed = draw_seed(self.config.seed, stream, self.iteration as u64, step);
        latent_codes(
            self.config.latent_dim,
            self.config.batch_size,
            seed,
            self.device(),
        )
    }

    /// One critic update (the `k`-th of the current iteration): a real batch, a generated batch, the
    /// critic loss (plus `λ·penalty` for WGAN-GP), an optimiser step, and clipping for WGAN. Returns the
    /// critic loss, the penalty and the Wasserstein estimate `E D(x) − E D(G(z))` (WGANs).
    pub fn critic_step(&mut self, k: u64) -> Result<(f64, Option<f64>, Option<f64>)> {
        let cfg = &self.config;
        let (loss_kind, seed, bs, lambda, clip) =
            (cfg.loss, cfg.seed, cfg.batch_size, cfg.gp_lambda, cfg.clip);
        let real = self.next_real_batch()?;
        let fake = self
            .generator
            .forward(&self.noise(STREAM_CRITIC_Z, k)?)?
            .detach();
        let r = self.critic.forward(&real)?;
        let f = self.critic.forward(&fake)?;
        let (mut penalty, mut wasserstein) = (None, None);
        let mut loss = match loss_kind {
            GanLoss::Gan => ns_critic_loss(&r, &f)?,
            GanLoss::Wgan | GanLoss::WganGp => {
                let l = wgan_critic_loss(&r, &f)?;
                wasserstein = Some(-l.to_scalar::<f32>()? as f64);
                l
            }
        };
        if loss_kind == GanLoss::WganGp {
            let mut rng =
                StdRng::seed_from_u64(draw_seed(seed, STREAM_EPS, self.iteration as u64, k));
            let eps: Vec<f32> = (0..bs).map(|_| rng.random::<f32>()).collect();
            let eps = Tensor::from_vec(eps, bs, self.device())?;
            let gp = gradient_penalty(&self.critic, &real, &fake, &eps)?;
            penalty = Some(gp.to_scalar::<f32>()? as f64);
            loss = (loss + (gp * lambda)?)?;
        }
        let critic_loss = loss.to_scalar::<f32>()? as f64;
        self.check_finite(critic_loss)?;
        self.d_opt.backward_step(&loss)?;
        if loss_kind == GanLoss::Wgan {
            clip_weights(&self.d_vars, clip)?;
        }
        Ok((critic_loss, penalty, wasserstein))
    }

    /// One generator update on a fresh latent batch; returns the generator loss. Does not advance the
    /// iteration counter ([`GanTrainer::step`] does).
    pub fn generator_step(&mut self) -> Result<f64> {
        let f = self.critic.forward(
            &self
                .generator
                .forward(&self.noise(STREAM_GENERATOR_Z, 0)?)?,
        )?;
        let g_loss = match self.config.loss {
            GanLoss::Gan => ns_generator_loss(&f)?,
            GanLoss::Wgan | GanLoss::WganGp => wgan_generator_loss(&f)?,
        };
        let generator_loss = g_loss.to_scalar::<f32>()? as f64;
        self.check_finite(generator_loss)?;
        self.g_opt.backward_step(&g_loss)?;
        Ok(generator_loss)
    }

    /// One iteration: `n_critic` critic updates, then one generator update.
    pub fn step(&mut self) -> Result<GanLog> {
        let mut critic = (0.0, None, None);
        for k in 0..self.config.n_critic as u64 {
            critic = self.critic_step(k)?;
        }
        let generator_loss = self.generator_step()?;
        self.iteration += 1;
        let log = GanLog {
            iteration: self.iteration,
            critic_loss: critic.0,
            generator_loss,
            penalty: critic.1,
            wasserstein: critic.2,
        };
        if self.iteration.is_multiple_of(self.config.log_every) {
            self.history.push(log.clone());
        }
        Ok(log)
    }

    /// A NaN or infinite loss stops the run ([`NnError::Diverged`], `step` = the iteration).
    fn check_finite(&self, v: f64) -> Result<()> {
        if v.is_finite() {
            return Ok(());
        }
        Err(NnError::Diverged {
            loss: v,
            epoch: 0,
            step: self.iteration,
        })
    }

    /// Writes the checkpoint of the current iteration to `dir` (see the module docs).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        tensors.extend(prefixed(varmap_tensors(&self.g_vars)?, "g."));
        tensors.extend(prefixed(varmap_tensors(&self.d_vars)?, "d."));
        tensors.extend(prefixed(self.g_opt.state_tensors(), "g."));
        tensors.extend(prefixed(self.d_opt.state_tensors(), "d."));
        let name = format!("checkpoint-it{:07}.safetensors", self.iteration);
        save_tensors(&tensors, &dir.join(&name))?;
        let state = GanState {
            version: STATE_VERSION,
            config: self.config.clone(),
            iteration: self.iteration,
            real_batches: self.real_batches,
            g_steps: self.g_opt.steps(),
            d_steps: self.d_opt.steps(),
            tensors: name.clone(),
            history: self.history.clone(),
            notes: serde_json::Value::Object(self.notes.clone()),
            train_seconds: Some(self.train_seconds),
        };
        write_json_atomic(&dir.join(STATE_FILE), &state)?;
        // Older tensor files are no longer referenced by the commit point.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                if f.starts_with("checkpoint-it") && f.ends_with(".safetensors") && f != name {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Trains until `config.iterations`, saving to `checkpoint_dir` every `checkpoint_every` iterations
    /// and at the end, advancing `progress` once per iteration ([`GanTrainer::train`] without a hook).
    pub fn run(
        &mut self,
        checkpoint_dir: Option<&Path>,
        progress: Option<&dyn Progress>,
    ) -> Result<()> {
        self.train(checkpoint_dir, progress, |_| Ok::<(), NnError>(()))
    }

    /// Trains until `config.iterations`. At every checkpoint — iteration 0 of a fresh run, every
    /// `checkpoint_every` iterations and the last one — calls `on_checkpoint` (which may record data with
    /// [`GanTrainer::set_note`], so that it is saved with the checkpoint) and then, with a `checkpoint_dir`,
    /// saves. Accumulates the wall time of the training steps in [`GanTrainer::train_seconds`].
    pub fn train<E: From<NnError>>(
        &mut self,
        checkpoint_dir: Option<&Path>,
        progress: Option<&dyn Progress>,
        mut on_checkpoint: impl FnMut(&mut Self) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        if let Some(p) = progress {
            p.start(self.config.iterations as u64, self.iteration as u64);
        }
        let mut checkpoint = |t: &mut Self| -> std::result::Result<(), E> {
            on_checkpoint(t)?;
            if let Some(dir) = checkpoint_dir {
                t.save(dir)?;
            }
            Ok(())
        };
        if self.iteration == 0 {
            checkpoint(self)?;
        }
        let mut clock = Instant::now();
        while self.iteration < self.config.iterations {
            let log = self.step()?;
            if let Some(p) = progress {
                p.advance(1);
                p.message(&format!(
                    "D {:.3} G {:.3}",
                    log.critic_loss, log.generator_loss
                ));
            }
            if self.iteration == self.config.iterations
                || self.iteration.is_multiple_of(self.config.checkpoint_every)
            {
                self.train_seconds += clock.elapsed().as_secs_f64();
                checkpoint(self)?;
                clock = Instant::now();
            }
        }
        Ok(())
    }

    /// Wall time spent in training steps so far, resumes included.
    pub fn train_seconds(&self) -> f64 {
        self.train_seconds
    }

    /// The caller data stored under `key` (see [`GanTrainer::set_note`]), `None` if there is none; an
    /// error naming the key if it does not parse as a `T` — a history silently started over would report
    /// a resumed run's curves from its resumption on only.
    pub fn note<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.notes
            .get(key)
            .map(|v| {
                serde_json::from_value(v.clone()).map_err(|e| {
                    NnError::invalid(
                        "notes",
                        format!("the checkpoint's `notes.{key}` is unreadable: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// Stores `value` under `key`; it is saved with the next checkpoint and restored on resume.
    pub fn set_note<T: Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let value = serde_json::to_value(value)
            .map_err(|e| NnError::invalid("notes", format!("`{key}` does not serialise: {e}")))?;
        self.notes.insert(key.to_string(), value);
        Ok(())
    }

    /// `n` generated images `[n, 1, 28, 28]` from latent codes drawn with `seed`.
    pub fn generate(&self, n: usize, seed: u64) -> Result<Tensor> {
        generate(&self.generator, n, seed)
    }

    /// The images of the run's fixed latent codes (`config.samples` of them, the same at every
    /// iteration and after a resume).
    pub fn fixed_samples(&self) -> Result<Tensor> {
        self.generate(
            self.config.samples,
            draw_seed(self.config.seed, STREAM_FIXED, 0, 0),
        )
    }
}

/// `n` images of `generator` from latent codes drawn with `seed`.
pub fn generate(generator: &Generator, n: usize, seed: u64) -> Result<Tensor> {
    let device = match generator {
        Generator::Mlp { out, .. } => out.weight().device().clone(),
        Generator::Dcgan { fc, .. } => fc.weight().device().clone(),
    };
    generate_from(
        generator,
        &latent_codes(generator.latent_dim(), n, seed, &device)?,
    )
}

/// A generator restored from the checkpoint directory `dir`, with its config and iteration.
pub fn load_generator(dir: &Path, device: &Device) -> Result<(GanConfig, Generator, usize)> {
    let state_path: PathBuf = dir.join(STATE_FILE);
    if !state_path.exists() {
        return Err(NnError::Checkpoint {
            path: dir.to_path_buf(),
            reason: format!(
                "no {STATE_FILE}: not a GAN checkpoint directory (run `mathnn gan train` first)"
            ),
        });
    }
    let state: GanState = read_json(&state_path)?;
    let (vars, generator) = build_generator(&state.config, device)?;
    let tpath = dir.join(&state.tensors);
    load_into_varmap(&vars, &load_tensors(&tpath, device)?, "g.", &tpath)?;
    Ok((state.config, generator, state.iteration))
}

/// The fixed-sample seed of a run (the codes of [`GanTrainer::fixed_samples`]).
pub fn fixed_sample_seed(config: &GanConfig) -> u64 {
    draw_seed(config.seed, STREAM_FIXED, 0, 0)
}
