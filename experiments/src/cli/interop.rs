//! `mathnn export --torch` and `mathnn import --torch`: a classifier of `mathnn train` as a PyTorch state
//! dict, and back. The PyTorch modules with mathnn's parameter names are `benches/peers/mathnn_torch.py`
//! (docs/interop.md): both frameworks store convolution kernels as (out, in, kh, kw) and linear weights as
//! (out, in), so no tensor is renamed or transposed. The file carries the model's configuration (and the
//! data set's name) as safetensors metadata, so either side can rebuild the network.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{Device, Tensor};
use clap::Args;
use nn_core::models::ModelConfig;
use nn_core::train::TrainConfig;
use serde_json::json;

use crate::common::{ForceArg, lock_run_dir, new_model};
use crate::runs::classifier::{RunConfig, load_trained};

/// Metadata key holding the model's configuration as JSON (the `model` of `config.json`).
pub const MODEL_KEY: &str = "mathnn_model";
/// Metadata key holding the name of the data set the model was trained on.
pub const DATASET_KEY: &str = "mathnn_dataset";
/// PyTorch's batch-norm step counter: in every state dict, unused by mathnn.
const BATCHES_TRACKED: &str = ".num_batches_tracked";

#[derive(Args)]
pub struct ExportArgs {
    /// Directory written by `mathnn train` (config.json and model.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Write a PyTorch state dict (mathnn's names; see benches/peers/mathnn_torch.py).
    #[arg(long, required = true)]
    pub torch: bool,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A safetensors state dict with `mathnn_model` metadata (benches/peers/mathnn_torch.py's `save`, or
    /// `mathnn export --torch`).
    pub file: PathBuf,
    /// Read a PyTorch state dict (`num_batches_tracked` entries are ignored).
    #[arg(long, required = true)]
    pub torch: bool,
    /// Directory to write config.json and model.safetensors to, as `mathnn train` does (then `mathnn eval
    /// --checkpoint DIR`).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub force: ForceArg,
}

/// `mathnn export --torch`.
pub fn run_export(a: ExportArgs) -> Result<()> {
    let (config, varmap, _) = load_trained(&a.checkpoint, &Device::Cpu)?;
    let mut tensors = nn_core::checkpoint::varmap_tensors(&varmap)?;
    let counters: Vec<String> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(".running_mean"))
        .map(|layer| format!("{layer}{BATCHES_TRACKED}"))
        .collect();
    for key in counters {
        tensors.insert(key, Tensor::new(0i64, &Device::Cpu)?);
    }
    let mut meta = HashMap::new();
    meta.insert(MODEL_KEY.to_string(), serde_json::to_string(&config.model)?);
    meta.insert(DATASET_KEY.to_string(), config.dataset.clone());
    let mut items: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    items.sort_by_key(|(k, _)| *k);
    let bytes = safetensors::serialize(items, Some(meta))
        .map_err(|e| anyhow!("cannot encode the state dict: {e}"))?;
    // Creates missing parent folders, as every file mathnn writes.
    nn_core::checkpoint::write_atomic(&a.out, &bytes)?;
    println!(
        "{}",
        json!({
            "checkpoint": a.checkpoint.display().to_string(),
            "out": a.out.display().to_string(),
            "model": config.model.kind.to_string(),
            "dataset": config.dataset,
            "tensors": tensors.len(),
        })
    );
    Ok(())
}

/// `mathnn import --torch`.
pub fn run_import(a: ImportArgs) -> Result<()> {
    let file = a.file.display().to_string();
    let bytes = std::fs::read(&a.file).with_context(|| format!("{file}: cannot read"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{file}: not a safetensors file ({e})"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let model_json = meta.get(MODEL_KEY).with_context(|| {
        format!(
            "{file}: no `{MODEL_KEY}` metadata naming the model; save it with \
             benches/peers/mathnn_torch.py's save() (or `mathnn export --torch`)"
        )
    })?;
    let model: ModelConfig = serde_json::from_str(model_json)
        .with_context(|| format!("{file}: `{MODEL_KEY}` is not a mathnn model configuration"))?;
    let dataset = meta
        .get(DATASET_KEY)
        .cloned()
        .unwrap_or_else(|| "mnist".into());
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| anyhow!("{file}: cannot read its tensors ({e})"))?;
    tensors.retain(|k, _| !k.ends_with(BATCHES_TRACKED));
    let (varmap, _) = new_model(&model, 0, &Device::Cpu)?;
    nn_core::checkpoint::load_into_varmap(&varmap, &tensors, "", &a.file)?;
    let known = nn_core::checkpoint::varmap_tensors(&varmap)?;
    let mut extra: Vec<&String> = tensors.keys().filter(|k| !known.contains_key(*k)).collect();
    extra.sort();
    if let Some(first) = extra.first() {
        bail!(
            "{file}: tensor `{first}` is not a parameter of a {} ({} unexpected tensors)",
            model.kind,
            extra.len()
        );
    }
    let weights = a.out.join("model.safetensors");
    if weights.exists() && !a.force.enabled {
        bail!(
            "--out {}: already holds a model; pass --force to replace it",
            a.out.display()
        );
    }
    let _lock = lock_run_dir(&a.out, "import", a.force.enabled)?;
    nn_core::checkpoint::save_varmap(&varmap, &weights)?;
    let config = RunConfig {
        dataset,
        data_provenance: format!("imported from PyTorch ({file})"),
        model,
        train: TrainConfig::default(),
        limit_train: None,
        limit_test: None,
    };
    nn_core::checkpoint::write_json_atomic(&a.out.join("config.json"), &config)?;
    // What `mathnn eval` will do: the directory must load.
    load_trained(&a.out, &Device::Cpu)?;
    println!(
        "{}",
        json!({
            "file": file,
            "out": a.out.display().to_string(),
            "model": config.model.kind.to_string(),
            "dataset": config.dataset,
            "tensors": known.len(),
        })
    );
    Ok(())
}
