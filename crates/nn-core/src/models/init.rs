//! [`SeededVarMap`]: a [`VarMap`] whose new variables are initialised from a seeded RNG.
//!
//! candle's CPU device cannot be seeded, so `VarMap`'s own initialisation differs run to run. Models are
//! built in a fixed order, so drawing every initial value from one `StdRng` makes the weights a function
//! of the seed alone.

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, Uniform};

/// A variable store with seeded initialisation; the variables live in the wrapped [`VarMap`].
pub struct SeededVarMap {
    varmap: VarMap,
    rng: Mutex<StdRng>,
}

impl SeededVarMap {
    /// Wraps `varmap`; variables already in it are kept as they are.
    pub fn new(varmap: &VarMap, seed: u64) -> Self {
        Self {
            varmap: varmap.clone(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// A `VarBuilder` creating variables in `varmap`, initialised from `seed`.
    pub fn var_builder(
        varmap: &VarMap,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> VarBuilder<'static> {
        VarBuilder::from_backend(
            Box::new(SeededVarMap::new(varmap, seed)),
            dtype,
            device.clone(),
        )
    }

    fn init_values(&self, shape: &Shape, init: Init) -> candle_core::Result<Vec<f64>> {
        let n = shape.elem_count();
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("rng lock poisoned".into()))?;
        let uniform = |lo: f64, up: f64, rng: &mut StdRng| -> candle_core::Result<Vec<f64>> {
            let d = Uniform::new(lo, up).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            Ok((0..n).map(|_| d.sample(rng)).collect())
        };
        let normal = |mean: f64, std: f64, rng: &mut StdRng| -> candle_core::Result<Vec<f64>> {
            let d = Normal::new(mean, std).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            Ok((0..n).map(|_| d.sample(rng)).collect())
        };
        match init {
            Init::Const(c) => Ok(vec![c; n]),
            Init::Uniform { lo, up } => uniform(lo, up, &mut rng),
            Init::Randn { mean, stdev } => normal(mean, stdev, &mut rng),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(-bound, bound, &mut rng)
                    }
                    NormalOrUniform::Normal => normal(0.0, std, &mut rng),
                }
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        {
            let data = self
                .varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?;
            if let Some(v) = data.get(name) {
                if v.shape() != &s {
                    candle_core::bail!(
                        "shape mismatch on {name}: expected {s:?}, stored {:?}",
                        v.shape()
                    )
                }
                return Ok(v.as_tensor().clone());
            }
        }
        let values = self.init_values(&s, h)?;
        let t = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        self.varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("varmap lock poisoned".into()))?
            .insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("variable `{name}` must be created with a shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}
