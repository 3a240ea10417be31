//! The device-parametrised suite: layers' forward and backward, every model's forward, one optimiser step
//! and the WGAN-GP penalty's double backward run in f32 on the device under test and are compared with the same computation in f64 on the CPU
//! (tolerance 1e-4 relative to the largest reference value). `MATHNN_TEST_DEVICE` picks the device: `cpu`
//! (the default, part of `cargo test --workspace`: it then checks the f32 CPU path against f64), `cuda` or
//! `cuda:N` (a `--features cuda` build on a GPU machine; scripts/gpu-check.sh runs it).

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use nn_core::device::{DeviceChoice, open_device};
use nn_core::layers;
use nn_core::models::{InputSpec, ModelConfig, ModelKind, SeededVarMap, build_model};
use nn_core::ops::{self, Conv2dParams};
use nn_core::optim::{Optimizer, OptimizerConfig};

const TOL: f64 = 1e-4;

/// Seeded N(0, 1) values in f64 on the host.
fn normal(shape: &[usize], seed: u64) -> Result<Tensor> {
    nn_core::grad::seeded_normal(shape, DType::F64, &Device::Cpu, seed)
        .map_err(candle_core::Error::wrap)
}

fn device_under_test() -> Device {
    let name = std::env::var("MATHNN_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let choice: DeviceChoice = name
        .parse()
        .unwrap_or_else(|e| panic!("MATHNN_TEST_DEVICE={name}: {e}"));
    open_device(choice).unwrap_or_else(|e| panic!("MATHNN_TEST_DEVICE={name}: {e}"))
}

/// max |a − b| / max |b| over two tensors of one shape (any device, any float dtype).
fn rel_err(a: &Tensor, b: &Tensor) -> Result<f64> {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let b = b.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let diff = (a - &b)?.abs()?.max_all()?.to_scalar::<f64>()?;
    let scale = b.abs()?.max_all()?.to_scalar::<f64>()?.max(1e-12);
    Ok(diff / scale)
}

fn assert_close(what: &str, got: &Tensor, reference: &Tensor) -> Result<()> {
    let e = rel_err(got, reference)?;
    assert!(e <= TOL, "{what}: relative error {e:.2e} > {TOL:e}");
    Ok(())
}

/// `f(x, params)` and the gradients of `Σ f·r` (r a fixed random weighting) with respect to `x` and every
/// parameter, in `dtype` on `device`, from f64 host values.
fn value_and_grads(
    f: &dyn Fn(&Tensor, &[Tensor]) -> Result<Tensor>,
    x: &Tensor,
    params: &[Tensor],
    dtype: DType,
    device: &Device,
) -> Result<Vec<Tensor>> {
    let xv = Var::from_tensor(&x.to_dtype(dtype)?.to_device(device)?)?;
    let pv: Vec<Var> = params
        .iter()
        .map(|p| Var::from_tensor(&p.to_dtype(dtype)?.to_device(device)?))
        .collect::<Result<_>>()?;
    let pt: Vec<Tensor> = pv.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(xv.as_tensor(), &pt)?;
    let r = normal(y.dims(), 99)?.to_dtype(dtype)?.to_device(device)?;
    let grads = (&y * r)?.sum_all()?.backward()?;
    let mut out = vec![y];
    out.push(grads.get(xv.as_tensor()).expect("x gradient").clone());
    for p in &pv {
        out.push(
            grads
                .get(p.as_tensor())
                .expect("parameter gradient")
                .clone(),
        );
    }
    Ok(out)
}

fn check_layer(
    name: &str,
    f: &dyn Fn(&Tensor, &[Tensor]) -> Result<Tensor>,
    x_shape: &[usize],
    param_shapes: &[&[usize]],
) -> Result<()> {
    let device = device_under_test();
    let x = normal(x_shape, 1)?;
    let params: Vec<Tensor> = param_shapes
        .iter()
        .enumerate()
        .map(|(i, s)| normal(s, 10 + i as u64))
        .collect::<Result<_>>()?;
    let got = value_and_grads(f, &x, &params, DType::F32, &device)?;
    let reference = value_and_grads(f, &x, &params, DType::F64, &Device::Cpu)?;
    for (k, (g, r)) in got.iter().zip(&reference).enumerate() {
        let part = match k {
            0 => "value".to_string(),
            1 => "∂x".to_string(),
            k => format!("∂param{}", k - 2),
        };
        assert_close(&format!("{name} {part}"), g, r)?;
    }
    Ok(())
}

#[test]
fn conv2d_forward_and_gradients() -> Result<()> {
    for (stride, padding) in [(1, 1), (2, 0), (2, 1)] {
        let params = Conv2dParams {
            stride,
            padding,
            ..Default::default()
        };
        check_layer(
            &format!("conv2d stride {stride} padding {padding}"),
            &move |x, p| ops::conv2d_bias(x, &p[0], &p[1], params),
            &[3, 2, 9, 7],
            &[&[4, 2, 3, 3], &[4]],
        )?;
    }
    Ok(())
}

#[test]
fn conv_transpose2d_forward_and_gradients() -> Result<()> {
    let params = ops::ConvTranspose2dParams {
        stride: 2,
        padding: 1,
        output_padding: 1,
        ..Default::default()
    };
    check_layer(
        "conv_transpose2d",
        &move |x, p| ops::conv_transpose2d(x, &p[0], params),
        &[2, 3, 5, 5],
        &[&[3, 2, 4, 4]],
    )
}

#[test]
fn pooling_activations_and_linear_forward_and_gradients() -> Result<()> {
    check_layer(
        "max_pool2d",
        &|x, _| layers::max_pool2d(x, 2),
        &[2, 3, 6, 6],
        &[],
    )?;
    check_layer("relu", &|x, _| layers::relu(x), &[4, 5, 3], &[])?;
    check_layer(
        "linear",
        &|x, p| candle_nn::Linear::new(p[0].clone(), Some(p[1].clone())).forward(x),
        &[5, 7],
        &[&[3, 7], &[3]],
    )?;
    check_layer(
        "log_softmax",
        &|x, _| candle_nn::ops::log_softmax(x, 1),
        &[4, 6],
        &[],
    )
}

#[test]
fn batch_norm_train_mode_forward_and_gradients() -> Result<()> {
    check_layer(
        "batch_norm (train)",
        &|x, p| {
            let vm = VarMap::new();
            let vb = VarBuilder::from_varmap(&vm, x.dtype(), x.device());
            let bn = ops::batch_norm(3, 1e-5, vb)?;
            // Scale and shift as given, so that their gradients are checked too.
            let y = bn.forward_t(x, true)?;
            let shape = (1, 3, 1, 1);
            y.broadcast_mul(&p[0].reshape(shape)?)?
                .broadcast_add(&p[1].reshape(shape)?)
        },
        &[4, 3, 5, 5],
        &[&[3], &[3]],
    )
}

/// Sets every variable of `dst` (f64, CPU) to the value of the same-named variable of `src`, so that the
/// reference computes with the tested network's exact (f32) weights.
fn copy_as_f64(src: &VarMap, dst: &mut VarMap) -> Result<()> {
    for (name, var) in src.data().lock().expect("varmap lock").iter() {
        dst.set_one(
            name,
            var.as_tensor()
                .to_device(&Device::Cpu)?
                .to_dtype(DType::F64)?,
        )?;
    }
    Ok(())
}

/// A model's variables built from `seed` in f32 on `device`, and the same values in f64 on the CPU.
fn model_pair(
    kind: ModelKind,
    device: &Device,
) -> Result<[(VarMap, Box<dyn nn_core::models::Classifier>); 2]> {
    let config = ModelConfig::new(kind, InputSpec::new(1, 28, 28, 10));
    let build = |dtype: DType, device: &Device| -> Result<_> {
        let vm = VarMap::new();
        let vb = SeededVarMap::var_builder(&vm, 7, dtype, device);
        let model = build_model(&config, vb).map_err(candle_core::Error::wrap)?;
        Ok((vm, model))
    };
    let tested = build(DType::F32, device)?;
    let mut reference = build(DType::F64, &Device::Cpu)?;
    copy_as_f64(&tested.0, &mut reference.0)?;
    Ok([tested, reference])
}

#[test]
fn every_model_forward_matches() -> Result<()> {
    let device = device_under_test();
    let x = normal(&[4, 1, 28, 28], 3)?;
    for kind in ModelKind::ALL {
        let [(_, m32), (_, m64)] = model_pair(kind, &device)?;
        for train in [false, true] {
            let got = m32.forward_t(&x.to_dtype(DType::F32)?.to_device(&device)?, train)?;
            let reference = m64.forward_t(&x, train)?;
            assert_close(&format!("{kind} forward (train {train})"), &got, &reference)?;
        }
    }
    Ok(())
}

#[test]
fn one_optimiser_step_matches() -> Result<()> {
    let device = device_under_test();
    let x = normal(&[8, 1, 28, 28], 4)?;
    let y = Tensor::from_vec(
        (0..8u32).map(|i| i % 10).collect::<Vec<_>>(),
        8,
        &Device::Cpu,
    )?;
    let snapshot = |vm: &VarMap| -> Result<Vec<(String, Tensor)>> {
        let data = vm.data().lock().expect("varmap lock");
        let mut v: Vec<(String, Tensor)> = data
            .iter()
            // A deep copy: the in-place optimiser update must not reach the snapshot.
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_tensor()
                        .to_device(&Device::Cpu)?
                        .to_dtype(DType::F64)?
                        .copy()?,
                ))
            })
            .collect::<Result<_>>()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    };
    for kind in [ModelKind::Mlp, ModelKind::Lenet] {
        let [(vm32, m32), (vm64, m64)] = model_pair(kind, &device)?;
        let before = snapshot(&vm64)?;
        for (vm, m, dev, dtype) in [
            (&vm32, &m32, &device, DType::F32),
            (&vm64, &m64, &Device::Cpu, DType::F64),
        ] {
            // SGD with momentum: the update is linear in the gradient, so f32 and f64 agree to rounding
            // (Adam's first step is ≈ lr·sign(g), which a rounding can flip where g ≈ 0).
            let mut opt = Optimizer::new(OptimizerConfig::sgd(0.1, 0.9), vm)
                .map_err(candle_core::Error::wrap)?;
            let logits = m.forward_t(&x.to_dtype(dtype)?.to_device(dev)?, true)?;
            let loss = layers::cross_entropy(&logits, &y.to_device(dev)?)?;
            opt.step(&loss.backward()?)
                .map_err(candle_core::Error::wrap)?;
        }
        let (after32, after64) = (snapshot(&vm32)?, snapshot(&vm64)?);
        for ((name, b), ((_, a32), (_, a64))) in before.iter().zip(after32.iter().zip(&after64)) {
            let (d32, d64) = ((a32 - b)?, (a64 - b)?);
            assert_close(&format!("{kind} {name}: SGD update"), &d32, &d64)?;
        }
    }
    Ok(())
}

/// The WGAN-GP penalty and its gradient with respect to the critic's weights — a double backward through
/// the critic (convolutions for DCGAN) — on the device, against f64 on the CPU.
#[test]
fn gradient_penalty_double_backward_matches() -> Result<()> {
    use nn_core::gan::losses::gradient_penalty;
    use nn_core::gan::{Critic, GanArch};
    let device = device_under_test();
    let real = normal(&[4, 1, 28, 28], 20)?;
    let fake = normal(&[4, 1, 28, 28], 21)?;
    let eps = Tensor::new(&[0.2f64, 0.5, 0.7, 1.0], &Device::Cpu)?;
    for arch in [GanArch::Mlp, GanArch::Dcgan] {
        let build = |dtype: DType, dev: &Device| -> Result<(VarMap, Critic)> {
            let vm = VarMap::new();
            let vb = SeededVarMap::var_builder(&vm, 11, dtype, dev);
            let critic = Critic::new(arch, 8, vb).map_err(candle_core::Error::wrap)?;
            Ok((vm, critic))
        };
        let (vm32, c32) = build(DType::F32, &device)?;
        let (mut vm64, c64) = build(DType::F64, &Device::Cpu)?;
        copy_as_f64(&vm32, &mut vm64)?;
        let mut results = Vec::new();
        for (vm, critic, dev, dtype) in [
            (&vm32, &c32, &device, DType::F32),
            (&vm64, &c64, &Device::Cpu, DType::F64),
        ] {
            let to = |t: &Tensor| t.to_dtype(dtype)?.to_device(dev);
            let penalty = gradient_penalty(critic, &to(&real)?, &to(&fake)?, &to(&eps)?)
                .map_err(candle_core::Error::wrap)?;
            let grads = penalty.backward()?;
            let data = vm.data().lock().expect("varmap lock");
            let mut named: Vec<(String, Tensor)> = data
                .iter()
                .filter_map(|(k, v)| grads.get(v.as_tensor()).map(|g| (k.clone(), g.clone())))
                .collect();
            named.sort_by(|a, b| a.0.cmp(&b.0));
            results.push((penalty, named));
        }
        let (p32, g32) = &results[0];
        let (p64, g64) = &results[1];
        assert_close(&format!("{arch:?} penalty"), p32, p64)?;
        assert_eq!(
            g32.len(),
            g64.len(),
            "{arch:?}: gradients for other variables"
        );
        assert!(!g32.is_empty());
        for ((name, a), (_, b)) in g32.iter().zip(g64) {
            assert_close(&format!("{arch:?} ∂penalty/∂{name}"), a, b)?;
        }
    }
    Ok(())
}
