//! The fused layer ops of `nn_core::ops` — `relu_max_pool2d`, the convolution block
//! `conv2d_relu_max_pool2d` and the dense layer `linear` — against the separate ops they replace (values
//! and gradients of first and second order; bit for bit where the arithmetic is the same) and against
//! central finite differences in f64.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Module, VarBuilder, VarMap};
use nn_core::grad::{GradCheckOptions, grad_check};
use nn_core::layers;
use nn_core::models::{InputSpec, ModelConfig, ModelKind};
use nn_core::ops::{self, Conv2dParams};

mod common;

use common::{flat, pool_inputs, randn, rel_diff};

const FD_TOL: f64 = 1e-5;

#[test]
fn relu_max_pool_equals_relu_then_pool_bit_for_bit() -> candle_core::Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for (i, (x0, k)) in pool_inputs(dtype).into_iter().enumerate() {
            let x = Var::from_tensor(&x0)?;
            let fused = ops::relu_max_pool2d(&x, k)?;
            let separate = layers::max_pool2d(&ops::relu(&x)?, k)?;
            assert_eq!(flat(&fused), flat(&separate), "case {i}: forward");
            let u = randn(fused.dims(), dtype, 9 + i as u64);
            let g1 = (&fused * &u)?.sum_all()?.backward()?;
            let g2 = (&separate * &u)?.sum_all()?.backward()?;
            assert_eq!(
                flat(g1.get(&x).unwrap()),
                flat(g2.get(&x).unwrap()),
                "case {i}: gradient"
            );
        }
    }
    let x = randn(&[2, 2, 4, 4], DType::F64, 1);
    assert!(ops::relu_max_pool2d(&x, 0).is_err());
    assert!(ops::relu_max_pool2d(&x, 5).is_err());
    assert!(ops::relu_max_pool2d(&x.to_dtype(DType::BF16)?, 2).is_err());
    Ok(())
}

#[test]
fn relu_max_pool_second_order_equals_the_separate_ops() -> candle_core::Result<()> {
    nn_core::grad::require_second_order().unwrap();
    for (i, (x0, k)) in pool_inputs(DType::F64).into_iter().enumerate() {
        let mut out = Vec::new();
        for fused in [true, false] {
            let s = Var::new(1.5f64, &Device::Cpu)?;
            let x = Var::from_tensor(&x0)?;
            let xs = x.broadcast_mul(&s)?;
            let y = if fused {
                ops::relu_max_pool2d(&xs, k)?
            } else {
                layers::max_pool2d(&ops::relu(&xs)?, k)?
            };
            let u = randn(y.dims(), DType::F64, 40 + i as u64);
            let g = (y * &u)?.sum_all()?.backward()?;
            let pen = g.get(&x).unwrap().sqr()?.sum_all()?;
            let gs = pen.backward()?;
            out.push((pen.to_scalar::<f64>()?, flat(gs.get(&s).unwrap())));
        }
        assert_eq!(out[0], out[1], "case {i}");
    }
    Ok(())
}

/// (input, kernel, params, pool side): odd sizes, batch 1, one channel, stride, padding, dilation, 1×1,
/// no pool (k = 1), and a size that takes the parallel paths.
fn block_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams, usize)> {
    let p = |stride, padding, dilation| Conv2dParams {
        stride,
        padding,
        dilation,
        groups: 1,
    };
    vec![
        ([2, 3, 7, 6], [4, 3, 3, 3], p(1, 0, 1), 2),
        ([1, 1, 9, 9], [2, 1, 5, 5], p(1, 2, 1), 3),
        ([3, 2, 8, 7], [5, 2, 3, 2], p(2, 1, 1), 2),
        ([2, 3, 11, 10], [2, 3, 3, 3], p(3, 2, 2), 1),
        ([1, 4, 5, 5], [3, 4, 1, 1], p(1, 0, 1), 2),
        ([9, 2, 6, 5], [3, 2, 3, 3], p(1, 1, 1), 1),
        ([16, 1, 28, 28], [20, 1, 5, 5], p(1, 0, 1), 2),
    ]
}

/// The block from the separate ops: `max_pool2d(relu(conv2d_bias(x, w, b)), k)`.
fn separate_block(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    p: Conv2dParams,
    k: usize,
) -> candle_core::Result<Tensor> {
    layers::max_pool2d(&ops::relu(&ops::conv2d_bias(x, w, b, p)?)?, k)
}

#[test]
fn conv_block_equals_the_separate_ops_bit_for_bit() -> candle_core::Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for (i, (xs, ws, p, k)) in block_cases().into_iter().enumerate() {
            let seed = 10 * i as u64;
            let mut x0 = randn(&xs, dtype, seed);
            let mut b0 = randn(&[ws[0]], dtype, seed + 2);
            if i == 0 {
                // A zero image with a zero bias: every window's maximum is exactly 0.
                x0 = x0.slice_assign(
                    &[0..1, 0..xs[1], 0..xs[2], 0..xs[3]],
                    &Tensor::zeros((1, xs[1], xs[2], xs[3]), dtype, &Device::Cpu)?,
                )?;
                b0 = b0.zeros_like()?;
            }
            let x = Var::from_tensor(&x0)?;
            let w = Var::from_tensor(&randn(&ws, dtype, seed + 1))?;
            let b = Var::from_tensor(&b0)?;
            let fused = ops::conv2d_relu_max_pool2d(&x, &w, &b, p, k)?;
            let separate = separate_block(&x, &w, &b, p, k)?;
            assert_eq!(flat(&fused), flat(&separate), "case {i} {dtype:?}: forward");
            let u = randn(fused.dims(), dtype, seed + 3);
            let g1 = (&fused * &u)?.sum_all()?.backward()?;
            let g2 = (&separate * &u)?.sum_all()?.backward()?;
            for (name, v) in [("input", &x), ("kernel", &w), ("bias", &b)] {
                assert_eq!(
                    flat(g1.get(v).unwrap()),
                    flat(g2.get(v).unwrap()),
                    "case {i} {dtype:?}: {name} gradient"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn conv_block_matches_finite_differences() -> candle_core::Result<()> {
    let opts = GradCheckOptions {
        step: 1e-6,
        max_coords: 200,
        seed: 3,
    };
    for (i, (xs, ws, p, k)) in block_cases().into_iter().enumerate().take(5) {
        let x = randn(&xs, DType::F64, 50 + i as u64);
        let w = randn(&ws, DType::F64, 60 + i as u64);
        let b = randn(&[ws[0]], DType::F64, 70 + i as u64);
        let y = ops::conv2d_relu_max_pool2d(&x, &w, &b, p, k)?;
        let u = randn(y.dims(), DType::F64, 80 + i as u64);
        let f = |x: &Tensor, w: &Tensor, b: &Tensor| {
            (ops::conv2d_relu_max_pool2d(x, w, b, p, k)? * &u)?.sum_all()
        };
        let dx = grad_check(|x| f(x, &w, &b), &x, opts).unwrap();
        let dw = grad_check(|w| f(&x, w, &b), &w, opts).unwrap();
        let db = grad_check(|b| f(&x, &w, b), &b, opts).unwrap();
        for (name, c) in [("input", dx), ("kernel", dw), ("bias", db)] {
            assert!(c.coords_checked > 0);
            assert!(c.max_rel_error < FD_TOL, "case {i} {name}: {c:?}");
        }
    }
    Ok(())
}

/// `‖∂⟨block(x, W, b), u⟩/∂x‖²` differentiated with respect to W, as the WGAN-GP penalty does.
#[test]
fn conv_block_second_order_equals_the_separate_ops() -> candle_core::Result<()> {
    nn_core::grad::require_second_order().unwrap();
    for (i, (xs, ws, p, k)) in block_cases().into_iter().enumerate().take(6) {
        let x0 = randn(&xs, DType::F64, 90 + i as u64);
        let w0 = randn(&ws, DType::F64, 100 + i as u64);
        let b0 = randn(&[ws[0]], DType::F64, 110 + i as u64);
        let mut out = Vec::new();
        for fused in [true, false] {
            let (x, w, b) = (
                Var::from_tensor(&x0)?,
                Var::from_tensor(&w0)?,
                Var::from_tensor(&b0)?,
            );
            let y = if fused {
                ops::conv2d_relu_max_pool2d(&x, &w, &b, p, k)?
            } else {
                separate_block(&x, &w, &b, p, k)?
            };
            let u = randn(y.dims(), DType::F64, 120 + i as u64);
            let g = (y * &u)?.sum_all()?.backward()?;
            let pen = g.get(&x).unwrap().sqr()?.sum_all()?.backward()?;
            out.push(pen.get(&w).unwrap().clone());
        }
        let d = rel_diff(&out[0], &out[1]);
        assert!(d < 1e-12, "case {i}: {d:e}");
    }
    Ok(())
}

#[test]
fn conv_block_errors_and_inference() -> candle_core::Result<()> {
    let (xs, ws, p, _) = block_cases()[0];
    let x = randn(&xs, DType::F32, 1);
    let w = randn(&ws, DType::F32, 2);
    let b = randn(&[ws[0]], DType::F32, 3);
    // A bias of the wrong length names the bias; a pool larger than the output is an error.
    let bad = Tensor::zeros(ws[0] + 1, DType::F32, &Device::Cpu)?;
    let err = ops::conv2d_relu_max_pool2d(&x, &w, &bad, p, 2).unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    assert!(ops::conv2d_relu_max_pool2d(&x, &w, &b, p, 6).is_err());
    assert!(ops::conv2d_relu_max_pool2d(&x, &w, &b, p, 0).is_err());
    let fast = ops::conv2d_relu_max_pool2d(&x, &w, &b, p, 2)?;
    // Without any operand in the graph the output is the same (nothing is kept for a backward pass).
    assert_eq!(flat(&fast), flat(&separate_block(&x, &w, &b, p, 2)?));
    Ok(())
}

#[test]
fn linear_equals_candle_nn_and_finite_differences() -> candle_core::Result<()> {
    for (n, fan_in, fan_out) in [(1, 1, 1), (5, 7, 3), (64, 800, 500), (3, 300, 1)] {
        let seed = (n * 1000 + fan_in) as u64;
        let x = Var::from_tensor(&randn(&[n, fan_in], DType::F64, seed))?;
        let w = Var::from_tensor(&randn(&[fan_out, fan_in], DType::F64, seed + 1))?;
        let b = Var::from_tensor(&randn(&[fan_out], DType::F64, seed + 2))?;
        let ours = ops::linear(&x, &w, Some(&b))?;
        let theirs = candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))
            .forward(&x)?;
        assert!(rel_diff(&ours, &theirs) < 1e-13, "{n}x{fan_in}->{fan_out}");
        let u = randn(ours.dims(), DType::F64, seed + 3);
        let g1 = (&ours * &u)?.sum_all()?.backward()?;
        let g2 = (&theirs * &u)?.sum_all()?.backward()?;
        for (name, v) in [("input", &x), ("weight", &w), ("bias", &b)] {
            let d = rel_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(d < 1e-13, "{n}x{fan_in}->{fan_out} {name}: {d:e}");
        }
    }
    let opts = GradCheckOptions {
        step: 1e-6,
        max_coords: 200,
        seed: 1,
    };
    let x = randn(&[4, 6], DType::F64, 1);
    let w = randn(&[3, 6], DType::F64, 2);
    let b = randn(&[3], DType::F64, 3);
    let u = randn(&[4, 3], DType::F64, 4);
    let f = |x: &Tensor, w: &Tensor, b: &Tensor| (ops::linear(x, w, Some(b))? * &u)?.sum_all();
    for (name, c) in [
        ("input", grad_check(|x| f(x, &w, &b), &x, opts).unwrap()),
        ("weight", grad_check(|w| f(&x, w, &b), &w, opts).unwrap()),
        ("bias", grad_check(|b| f(&x, &w, b), &b, opts).unwrap()),
    ] {
        assert!(c.max_rel_error < FD_TOL, "{name}: {c:?}");
    }
    // f32 and the fallbacks (3-D input, no bias) agree with candle-nn; a bad shape is an error.
    let x32 = randn(&[2, 5, 6], DType::F32, 5);
    let (w32, b32) = (w.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
    let reference = candle_nn::Linear::new(w32.clone(), Some(b32.clone()));
    assert!(
        rel_diff(
            &ops::linear(&x32, &w32, Some(&b32))?,
            &reference.forward(&x32)?
        ) < 1e-6
    );
    let x2 = x32.get(0)?;
    assert!(
        rel_diff(
            &ops::linear(&x2, &w32, Some(&b32))?,
            &reference.forward(&x2)?
        ) < 1e-6
    );
    assert!(rel_diff(&ops::linear(&x2, &w32, None)?, &x2.matmul(&w32.t()?)?) < 1e-6);
    let err = ops::linear(&x2, &w32.t()?, Some(&b32)).unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
    Ok(())
}

#[test]
fn linear_second_order_equals_candle_nn() -> candle_core::Result<()> {
    nn_core::grad::require_second_order().unwrap();
    let x0 = randn(&[5, 7], DType::F64, 1);
    let w0 = randn(&[4, 7], DType::F64, 2);
    let b0 = randn(&[4], DType::F64, 3);
    let mut out = Vec::new();
    for fused in [true, false] {
        let (x, w, b) = (
            Var::from_tensor(&x0)?,
            Var::from_tensor(&w0)?,
            Var::from_tensor(&b0)?,
        );
        let y = if fused {
            ops::linear(&x, &w, Some(&b))?
        } else {
            candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()))
                .forward(&x)?
        };
        // A nonlinearity after the layer, so the penalty depends on both x and W.
        let g = y.tanh()?.sum_all()?.backward()?;
        let pen = g.get(&x).unwrap().sqr()?.sum_all()?.backward()?;
        out.push((pen.get(&w).unwrap().clone(), pen.get(&b).unwrap().clone()));
    }
    assert!(rel_diff(&out[0].0, &out[1].0) < 1e-12);
    assert!(rel_diff(&out[0].1, &out[1].1) < 1e-12);
    Ok(())
}

/// LeNet's and VGG-small's `forward_t` (fused blocks) give the logits and parameter gradients of their
/// layer-by-layer `forward_activations`, bit for bit.
#[test]
fn models_fused_forward_equals_the_layer_by_layer_forward() -> candle_core::Result<()> {
    for kind in [ModelKind::Lenet, ModelKind::VggSmall] {
        let input = InputSpec::new(1, 28, 28, 10);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = nn_core::models::build_model(&ModelConfig::new(kind, input), vb).unwrap();
        let x = randn(&[3, 1, 28, 28], DType::F32, 7);
        let fused = model.forward_t(&x, true)?;
        let layered = model.forward_activations(&x, true)?.pop().unwrap().1;
        assert_eq!(flat(&fused), flat(&layered), "{kind:?}: logits");
        let g1 = fused.sum_all()?.backward()?;
        let g2 = layered.sum_all()?.backward()?;
        for var in varmap.all_vars() {
            assert_eq!(
                flat(g1.get(&var).unwrap()),
                flat(g2.get(&var).unwrap()),
                "{kind:?}: gradient of a {:?} parameter",
                var.dims()
            );
        }
    }
    Ok(())
}
