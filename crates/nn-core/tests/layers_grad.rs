//! Gradient checks of every safe replacement in `nn_core::layers` against central finite differences in
//! f64 (relative error < 1e-5), plus forward checks against naive loops and the hand examples of
//! `shared/specs/candle-pitfalls.md`.

use candle_core::{DType, Device, Tensor};
use nn_core::grad::{
    GradCheck, GradCheckOptions, adjoint_check, grad_check, input_gradient, seeded_normal, vjp,
};
use nn_core::layers;

const TOL: f64 = 1e-5;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    seeded_normal(shape, DType::F64, &Device::Cpu, seed).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// All coordinates of these small inputs are checked (a 40-coordinate sample could miss every pool
/// maximum), with the default step 1e-6.
fn opts(seed: u64) -> GradCheckOptions {
    GradCheckOptions {
        step: 1e-6,
        max_coords: 1000,
        seed,
    }
}

/// Checks `sum(f(x) · w)` for a fixed random `w` (so that the gradient is not trivial, e.g. for softmax
/// or layer norm whose plain sum is constant) and asserts the relative error is below `TOL`.
fn check_weighted<F>(name: &str, f: F, x: &Tensor, seed: u64) -> GradCheck
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    let y0 = f(x).unwrap();
    let w = randn(y0.dims(), seed ^ 0x5eed);
    let check = grad_check(|x| f(x)?.mul(&w)?.sum_all(), x, opts(seed)).unwrap();
    eprintln!(
        "grad_check {name}: max_rel_error = {:.3e} over {} coords (worst {:?})",
        check.max_rel_error, check.coords_checked, check.worst
    );
    assert!(check.coords_checked > 0, "{name}: nothing checked");
    assert!(check.max_rel_error < TOL, "{name}: {check:?}");
    check
}

/// Checks a scalar-valued `f` directly.
fn check_scalar<F>(name: &str, f: F, x: &Tensor, seed: u64) -> GradCheck
where
    F: Fn(&Tensor) -> candle_core::Result<Tensor>,
{
    let check = grad_check(f, x, opts(seed)).unwrap();
    eprintln!(
        "grad_check {name}: max_rel_error = {:.3e} over {} coords (worst {:?})",
        check.max_rel_error, check.coords_checked, check.worst
    );
    assert!(check.max_rel_error < TOL, "{name}: {check:?}");
    check
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

fn hand_2x2() -> Tensor {
    Tensor::new(&[[[[1f64, 2.], [3., 4.]]]], &Device::Cpu).unwrap()
}

// ------------------------------------------------------------------------------------------------
// max_pool2d (A1)

#[test]
fn max_pool2d_hand_example_gradient_is_one_at_the_maximum() {
    let g = input_gradient(|x| layers::max_pool2d(x, 2), &hand_2x2()).unwrap();
    assert_eq!(flat(&g), vec![0.0, 0.0, 0.0, 1.0]);
    // With another consumer of x: + 3·sum(x).
    let g = input_gradient(
        |x| layers::max_pool2d(x, 2)?.sum_all()? + (x.sum_all()? * 3.0)?,
        &hand_2x2(),
    )
    .unwrap();
    assert_eq!(flat(&g), vec![3.0, 3.0, 3.0, 4.0]);
}

/// Naive max pool with kernel k, stride s, padding p (padded cells never win), floor mode.
fn naive_max_pool(x: &Tensor, k: usize, s: usize, p: usize) -> (Vec<f64>, usize, usize) {
    let (n, c, h, w) = x.dims4().unwrap();
    let v = flat(x);
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (w + 2 * p - k) / s + 1;
    let mut out = Vec::new();
    for b in 0..n * c {
        for i in 0..ho {
            for j in 0..wo {
                let mut m = f64::NEG_INFINITY;
                for di in 0..k {
                    for dj in 0..k {
                        let (r, q) = (
                            (i * s + di) as isize - p as isize,
                            (j * s + dj) as isize - p as isize,
                        );
                        if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                            m = m.max(v[b * h * w + r as usize * w + q as usize]);
                        }
                    }
                }
                out.push(m);
            }
        }
    }
    (out, ho, wo)
}

#[test]
fn max_pool2d_forward_matches_naive_floor_mode() {
    for (shape, k) in [([2, 3, 6, 6], 2), ([1, 2, 7, 8], 3), ([1, 1, 5, 5], 2)] {
        let x = randn(&shape, 1);
        let y = layers::max_pool2d(&x, k).unwrap();
        let (want, ho, wo) = naive_max_pool(&x, k, k, 0);
        assert_eq!(y.dims(), &[shape[0], shape[1], ho, wo]);
        assert_close(&flat(&y), &want, 0.0, "max_pool2d");
    }
}

#[test]
fn max_pool2d_gradient() {
    check_weighted(
        "max_pool2d k2 6x6",
        |x| layers::max_pool2d(x, 2),
        &randn(&[2, 3, 6, 6], 2),
        2,
    );
    check_weighted(
        "max_pool2d k3 7x8 (floor)",
        |x| layers::max_pool2d(x, 3),
        &randn(&[1, 2, 7, 8], 3),
        3,
    );
}

#[test]
fn max_pool2d_twice_in_sequence() {
    check_weighted(
        "max_pool2d twice",
        |x| layers::max_pool2d(&layers::max_pool2d(x, 2)?, 2),
        &randn(&[2, 2, 8, 8], 4),
        4,
    );
}

#[test]
fn max_pool2d_input_with_another_consumer() {
    let x = randn(&[1, 2, 6, 6], 5);
    let w1 = randn(&[1, 2, 3, 3], 51);
    let w2 = randn(&[1, 2, 6, 6], 52);
    check_scalar(
        "max_pool2d + other consumer",
        |x| {
            let pooled = (layers::max_pool2d(x, 2)? * &w1)?.sum_all()?;
            let other = (x.tanh()? * &w2)?.sum_all()?;
            pooled + other
        },
        &x,
        5,
    );
    // The same tensor pooled twice along two paths, then combined.
    check_weighted(
        "max_pool2d two paths",
        |x| {
            let a = layers::max_pool2d(x, 2)?;
            let b = layers::max_pool2d(&x.sqr()?, 2)?;
            a * b
        },
        &x,
        6,
    );
}

// ------------------------------------------------------------------------------------------------
// max_pool2d_strided (A2)

#[test]
fn max_pool2d_strided_forward_matches_naive() {
    for (shape, k, s, p) in [
        ([2, 2, 7, 7], 3, 2, 1),
        ([1, 2, 8, 9], 3, 2, 0),
        ([1, 1, 5, 6], 3, 1, 1),
        ([1, 1, 6, 6], 2, 1, 0),
        ([1, 3, 9, 9], 5, 3, 2),
        ([1, 1, 4, 4], 2, 2, 0),
    ] {
        let x = randn(&shape, 7);
        let y = layers::max_pool2d_strided(&x, k, s, p).unwrap();
        let (want, ho, wo) = naive_max_pool(&x, k, s, p);
        assert_eq!(y.dims(), &[shape[0], shape[1], ho, wo], "k{k} s{s} p{p}");
        assert_close(&flat(&y), &want, 0.0, "max_pool2d_strided");
    }
    assert!(layers::max_pool2d_strided(&randn(&[1, 1, 5, 5], 0), 3, 2, 2).is_err());
}

#[test]
fn max_pool2d_strided_gradient() {
    for (shape, k, s, p) in [
        ([2, 2, 7, 7], 3, 2, 1),
        ([1, 2, 8, 9], 3, 2, 0),
        ([1, 1, 5, 6], 3, 1, 1),
        ([1, 1, 6, 6], 2, 1, 0),
        ([1, 2, 9, 9], 5, 3, 2),
    ] {
        let name = format!("max_pool2d_strided k{k} s{s} p{p}");
        check_weighted(
            &name,
            |x| layers::max_pool2d_strided(x, k, s, p),
            &randn(&shape, 8),
            8,
        );
    }
    // With another consumer, like a ResNet stem followed by a skip.
    let x = randn(&[1, 2, 7, 7], 9);
    let w = randn(&[1, 2, 7, 7], 91);
    check_weighted(
        "max_pool2d_strided + other consumer",
        |x| {
            let p = layers::max_pool2d_strided(x, 3, 2, 1)?; // 4x4
            let q = layers::max_pool2d(&(x * &w)?, 2)?; // 3x3
            p.narrow(2, 0, 3)?.narrow(3, 0, 3)? + q
        },
        &x,
        9,
    );
}

// ------------------------------------------------------------------------------------------------
// average pools

fn naive_avg_pool(x: &Tensor, k: usize, s: usize, p: usize, include_pad: bool) -> Vec<f64> {
    let (n, c, h, w) = x.dims4().unwrap();
    let v = flat(x);
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (w + 2 * p - k) / s + 1;
    let mut out = Vec::new();
    for b in 0..n * c {
        for i in 0..ho {
            for j in 0..wo {
                let (mut sum, mut cnt) = (0.0, 0usize);
                for di in 0..k {
                    for dj in 0..k {
                        let (r, q) = (
                            (i * s + di) as isize - p as isize,
                            (j * s + dj) as isize - p as isize,
                        );
                        if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                            sum += v[b * h * w + r as usize * w + q as usize];
                            cnt += 1;
                        }
                    }
                }
                out.push(if include_pad {
                    sum / (k * k) as f64
                } else {
                    sum / cnt as f64
                });
            }
        }
    }
    out
}

#[test]
fn avg_pool2d_forward_and_gradient() {
    for (shape, k) in [([2, 3, 6, 6], 2), ([1, 2, 7, 8], 3)] {
        let x = randn(&shape, 10);
        let y = layers::avg_pool2d(&x, k).unwrap();
        assert_close(
            &flat(&y),
            &naive_avg_pool(&x, k, k, 0, true),
            1e-14,
            "avg_pool2d",
        );
        check_weighted(
            &format!("avg_pool2d k{k} {shape:?}"),
            |x| layers::avg_pool2d(x, k),
            &x,
            10,
        );
    }
    let x = randn(&[1, 2, 6, 6], 11);
    check_scalar(
        "avg_pool2d + other consumer",
        |x| layers::avg_pool2d(x, 2)?.sqr()?.sum_all()? + x.sin()?.sum_all()?,
        &x,
        11,
    );
}

#[test]
fn avg_pool2d_strided_forward_and_gradient() {
    for (shape, k, s, p, inc) in [
        ([1, 2, 5, 6], 3, 1, 1, true),
        ([1, 2, 5, 6], 3, 1, 1, false),
        ([2, 1, 7, 7], 3, 2, 1, false),
        ([1, 1, 8, 9], 3, 2, 0, true),
    ] {
        let x = randn(&shape, 12);
        let y = layers::avg_pool2d_strided(&x, k, s, p, inc).unwrap();
        assert_close(
            &flat(&y),
            &naive_avg_pool(&x, k, s, p, inc),
            1e-14,
            "avg_pool2d_strided",
        );
        let name = format!("avg_pool2d_strided k{k} s{s} p{p} include_pad={inc}");
        check_weighted(
            &name,
            |x| layers::avg_pool2d_strided(x, k, s, p, inc),
            &x,
            12,
        );
    }
    // count_include_pad = false on a constant input keeps the constant, including corners.
    let ones = Tensor::ones((1, 1, 4, 4), DType::F64, &Device::Cpu).unwrap();
    let y = layers::avg_pool2d_strided(&ones, 3, 1, 1, false).unwrap();
    assert_close(&flat(&y), &[1.0; 16], 1e-15, "avg_pool2d_strided ones");
}

#[test]
fn global_avg_pool2d_forward_and_gradient() {
    let x = randn(&[2, 3, 4, 5], 13);
    let y = layers::global_avg_pool2d(&x).unwrap();
    assert_eq!(y.dims(), &[2, 3]);
    let v = flat(&x);
    let want: Vec<f64> = (0..6)
        .map(|b| v[b * 20..(b + 1) * 20].iter().sum::<f64>() / 20.0)
        .collect();
    assert_close(&flat(&y), &want, 1e-14, "global_avg_pool2d");
    check_weighted(
        "global_avg_pool2d",
        |x| layers::global_avg_pool2d(&x.sqr()?),
        &x,
        13,
    );
}

// ------------------------------------------------------------------------------------------------
// upsample_nearest2d (A3, A4)

#[test]
fn upsample_nearest2d_hand_example_with_skip_gives_seven() {
    let g = input_gradient(
        |x| layers::upsample_nearest2d(x, 2)?.sum_all()? + (x.sum_all()? * 3.0)?,
        &hand_2x2(),
    )
    .unwrap();
    assert_eq!(flat(&g), vec![7.0; 4]);
    // The order of the two terms does not matter.
    let g = input_gradient(
        |x| (x.sum_all()? * 3.0)? + layers::upsample_nearest2d(x, 2)?.sum_all()?,
        &hand_2x2(),
    )
    .unwrap();
    assert_eq!(flat(&g), vec![7.0; 4]);
}

#[test]
fn upsample_nearest2d_forward() {
    let y = layers::upsample_nearest2d(&hand_2x2(), 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 4, 4]);
    #[rustfmt::skip]
    let want = [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.];
    assert_eq!(flat(&y), want);
}

#[test]
fn upsample_nearest2d_gradient_with_skip_and_twice() {
    let x = randn(&[1, 2, 3, 3], 14);
    let w = randn(&[1, 2, 3, 3], 141);
    check_weighted(
        "upsample_nearest2d x3",
        |x| layers::upsample_nearest2d(x, 3),
        &x,
        14,
    );
    // U-Net skip: the input is also concatenated with the upsampled map downstream.
    check_weighted(
        "upsample_nearest2d + skip",
        |x| {
            let up = layers::upsample_nearest2d(&x.tanh()?, 2)?; // 6x6
            let skip = layers::avg_pool2d(&up, 2)?; // 3x3
            Tensor::cat(&[(skip * x)?, (x * &w)?], 1)
        },
        &x,
        15,
    );
    // Upsampling applied twice in sequence, and the same input upsampled along two paths.
    check_weighted(
        "upsample_nearest2d twice",
        |x| layers::upsample_nearest2d(&layers::upsample_nearest2d(x, 2)?, 2),
        &x,
        16,
    );
    check_weighted(
        "upsample_nearest2d two paths",
        |x| {
            let a = layers::upsample_nearest2d(x, 2)?;
            let b = layers::upsample_nearest2d(&x.sqr()?, 2)?;
            let c = layers::upsample_nearest2d(x, 2)?;
            (a * b)? + c.sin()?
        },
        &x,
        17,
    );
}

// ------------------------------------------------------------------------------------------------
// upsample_bilinear2d (A5)

#[test]
fn upsample_bilinear2d_hand_example_align_corners_false() {
    // torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
    let y = layers::upsample_bilinear2d(&hand_2x2(), 4, 4).unwrap();
    #[rustfmt::skip]
    let want = [
        1.0, 1.25, 1.75, 2.0,
        1.5, 1.75, 2.25, 2.5,
        2.5, 2.75, 3.25, 3.5,
        3.0, 3.25, 3.75, 4.0,
    ];
    assert_close(&flat(&y), &want, 1e-15, "bilinear 2x2->4x4");
    // Same size is the identity; a constant stays constant.
    let x = randn(&[1, 2, 3, 5], 18);
    assert_close(
        &flat(&layers::upsample_bilinear2d(&x, 3, 5).unwrap()),
        &flat(&x),
        1e-15,
        "identity",
    );
    let c = Tensor::full(2.5f64, (1, 1, 3, 4), &Device::Cpu).unwrap();
    assert_close(
        &flat(&layers::upsample_bilinear2d(&c, 7, 5).unwrap()),
        &[2.5; 35],
        1e-14,
        "constant",
    );
}

/// Naive per-pixel bilinear resize, PyTorch align_corners=false.
fn naive_bilinear(x: &Tensor, oh: usize, ow: usize) -> Vec<f64> {
    let (n, c, h, w) = x.dims4().unwrap();
    let v = flat(x);
    let src = |dst: usize, n_in: usize, n_out: usize| {
        let s = ((dst as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
        let i0 = (s.floor() as usize).min(n_in - 1);
        (i0, (i0 + 1).min(n_in - 1), s - i0 as f64)
    };
    let mut out = Vec::new();
    for b in 0..n * c {
        for i in 0..oh {
            let (r0, r1, ly) = src(i, h, oh);
            for j in 0..ow {
                let (c0, c1, lx) = src(j, w, ow);
                let at = |r: usize, q: usize| v[b * h * w + r * w + q];
                let top = (1.0 - lx) * at(r0, c0) + lx * at(r0, c1);
                let bot = (1.0 - lx) * at(r1, c0) + lx * at(r1, c1);
                out.push((1.0 - ly) * top + ly * bot);
            }
        }
    }
    out
}

#[test]
fn upsample_bilinear2d_forward_matches_naive_and_gradient() {
    for (shape, oh, ow) in [
        ([2, 2, 3, 5], 7, 4),
        ([1, 3, 6, 6], 4, 3),
        ([1, 1, 4, 4], 8, 8),
        ([1, 1, 1, 3], 3, 6),
    ] {
        let x = randn(&shape, 19);
        let y = layers::upsample_bilinear2d(&x, oh, ow).unwrap();
        assert_eq!(y.dims(), &[shape[0], shape[1], oh, ow]);
        assert_close(
            &flat(&y),
            &naive_bilinear(&x, oh, ow),
            1e-13,
            "bilinear vs naive",
        );
        let name = format!("upsample_bilinear2d {shape:?} -> {oh}x{ow}");
        check_weighted(&name, |x| layers::upsample_bilinear2d(x, oh, ow), &x, 19);
    }
    // Non-contiguous input and another consumer.
    let x = randn(&[1, 2, 4, 3], 20);
    check_weighted(
        "upsample_bilinear2d transposed input + skip",
        |x| {
            let up = layers::upsample_bilinear2d(&x.transpose(2, 3)?, 6, 8)?; // (1,2,6,8)
            let down = layers::avg_pool2d(&up, 2)?; // (1,2,3,4)
            (down.transpose(2, 3)? * x.tanh()?)? + x
        },
        &x,
        20,
    );
}

// ------------------------------------------------------------------------------------------------
// softmax, log_softmax, cross_entropy (A6)

#[test]
fn softmax_and_log_softmax_gradient() {
    let x = randn(&[3, 5], 21);
    let s = layers::softmax(&x, 1).unwrap();
    let rows = s.sum(1).unwrap();
    assert_close(&flat(&rows), &[1.0; 3], 1e-14, "softmax rows");
    let ls = layers::log_softmax(&x, 1).unwrap();
    assert_close(
        &flat(&ls.exp().unwrap()),
        &flat(&s),
        1e-14,
        "exp(log_softmax)",
    );
    check_weighted("softmax dim 1", |x| layers::softmax(x, 1), &x, 21);
    check_weighted("softmax dim 0", |x| layers::softmax(x, 0), &x, 22);
    check_weighted(
        "softmax D::Minus1 (3d)",
        |x| layers::softmax(x, candle_core::D::Minus1),
        &randn(&[2, 3, 4], 23),
        23,
    );
    check_weighted("log_softmax dim 1", |x| layers::log_softmax(x, 1), &x, 24);
    check_weighted("log_softmax dim 0", |x| layers::log_softmax(x, 0), &x, 25);
}

#[test]
fn cross_entropy_hand_value_and_gradient() {
    let logits = Tensor::new(
        &[[1f64, 2., 3.], [1., 1., 1.], [0.5, -1., 2.]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::new(&[2u32, 0, 1], &Device::Cpu).unwrap();
    let loss = layers::cross_entropy(&logits, &labels)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let lse = |v: &[f64]| v.iter().map(|a| a.exp()).sum::<f64>().ln();
    let want =
        ((lse(&[1., 2., 3.]) - 3.0) + (lse(&[1., 1., 1.]) - 1.0) + (lse(&[0.5, -1., 2.]) + 1.0))
            / 3.0;
    assert!(
        (loss - want).abs() < 1e-14,
        "cross_entropy {loss} vs {want}"
    );
    // Gradient: (softmax - onehot) / N.
    let g = input_gradient(|x| layers::cross_entropy(x, &labels), &logits).unwrap();
    let sm = flat(&layers::softmax(&logits, 1).unwrap());
    let mut want_g = sm.clone();
    for (row, &l) in [2usize, 0, 1].iter().enumerate() {
        want_g[row * 3 + l] -= 1.0;
    }
    let want_g: Vec<f64> = want_g.iter().map(|v| v / 3.0).collect();
    assert_close(&flat(&g), &want_g, 1e-15, "cross_entropy gradient");
    check_scalar(
        "cross_entropy",
        |x| layers::cross_entropy(&x.sqr()?, &labels),
        &randn(&[3, 3], 26),
        26,
    );
    assert!(layers::cross_entropy(&logits, &labels.to_dtype(DType::I64).unwrap()).is_err());
}

// ------------------------------------------------------------------------------------------------
// layer_norm, rms_norm (A7)

#[test]
fn layer_norm_forward_and_gradient() {
    let x = randn(&[4, 6], 27);
    let gamma = randn(&[6], 271);
    let beta = randn(&[6], 272);
    let ones = Tensor::ones(6, DType::F64, &Device::Cpu).unwrap();
    let zeros = Tensor::zeros(6, DType::F64, &Device::Cpu).unwrap();
    let y = layers::layer_norm(&x, &ones, &zeros, 0.0).unwrap();
    let mean = flat(&y.mean(1).unwrap());
    let var = flat(&y.sqr().unwrap().mean(1).unwrap());
    assert_close(&mean, &[0.0; 4], 1e-14, "layer_norm mean");
    assert_close(&var, &[1.0; 4], 1e-13, "layer_norm variance");
    // Matches candle's own slow (elementary-op) version.
    let slow = candle_nn::ops::layer_norm_slow(&x, &gamma, &beta, 1e-5).unwrap();
    let ours = layers::layer_norm(&x, &gamma, &beta, 1e-5).unwrap();
    assert_close(
        &flat(&ours),
        &flat(&slow),
        1e-12,
        "layer_norm vs layer_norm_slow",
    );

    check_weighted(
        "layer_norm wrt x",
        |x| layers::layer_norm(x, &gamma, &beta, 1e-5),
        &x,
        27,
    );
    check_weighted(
        "layer_norm wrt x (3d)",
        |x| layers::layer_norm(x, &gamma, &beta, 1e-5),
        &randn(&[2, 3, 6], 28),
        28,
    );
    check_weighted(
        "layer_norm wrt gamma",
        |g| layers::layer_norm(&x, g, &beta, 1e-5),
        &gamma,
        29,
    );
    check_weighted(
        "layer_norm wrt beta",
        |b| layers::layer_norm(&x, &gamma, b, 1e-5),
        &beta,
        30,
    );
    assert!(layers::layer_norm(&x, &randn(&[5], 0), &beta, 1e-5).is_err());
}

#[test]
fn rms_norm_forward_and_gradient() {
    let x = randn(&[4, 6], 31);
    let alpha = randn(&[6], 311);
    let slow = candle_nn::ops::rms_norm_slow(&x, &alpha, 1e-6).unwrap();
    let ours = layers::rms_norm(&x, &alpha, 1e-6).unwrap();
    assert_close(
        &flat(&ours),
        &flat(&slow),
        1e-12,
        "rms_norm vs rms_norm_slow",
    );
    check_weighted(
        "rms_norm wrt x",
        |x| layers::rms_norm(x, &alpha, 1e-6),
        &x,
        31,
    );
    check_weighted(
        "rms_norm wrt alpha",
        |a| layers::rms_norm(&x, a, 1e-6),
        &alpha,
        32,
    );
}

// ------------------------------------------------------------------------------------------------
// reflection_pad2d

#[test]
fn reflection_pad2d_forward_and_gradient() {
    let x = Tensor::arange(0f64, 12.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 3, 4))
        .unwrap();
    let y = layers::reflection_pad2d(&x, 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 7, 8]);
    // torch.nn.ReflectionPad2d(2)(torch.arange(12.).reshape(1, 1, 3, 4))
    #[rustfmt::skip]
    let want = [
        10., 9., 8., 9., 10., 11., 10., 9.,
        6., 5., 4., 5., 6., 7., 6., 5.,
        2., 1., 0., 1., 2., 3., 2., 1.,
        6., 5., 4., 5., 6., 7., 6., 5.,
        10., 9., 8., 9., 10., 11., 10., 9.,
        6., 5., 4., 5., 6., 7., 6., 5.,
        2., 1., 0., 1., 2., 3., 2., 1.,
    ];
    assert_eq!(flat(&y), want);
    // Gradient of the plain sum counts how often each input appears: rows [1,0,1,2,1], cols [1,0,1,2,3,2].
    let g = input_gradient(|x| layers::reflection_pad2d(x, 1), &x).unwrap();
    #[rustfmt::skip]
    let counts = [1., 2., 2., 1., 3., 6., 6., 3., 1., 2., 2., 1.];
    assert_eq!(flat(&g), counts);
    check_weighted(
        "reflection_pad2d p1",
        |x| layers::reflection_pad2d(x, 1),
        &randn(&[2, 2, 4, 5], 33),
        33,
    );
    check_weighted(
        "reflection_pad2d p2",
        |x| layers::reflection_pad2d(x, 2),
        &randn(&[1, 2, 3, 4], 34),
        34,
    );
    assert!(layers::reflection_pad2d(&x, 3).is_err());
}

// ------------------------------------------------------------------------------------------------
// conveniences and a small network through all of them

#[test]
fn relu_flatten_and_small_network() {
    // Random continuous inputs avoid ReLU kinks at exactly 0.
    check_weighted("relu", layers::relu, &randn(&[3, 4], 35), 35);
    let x = randn(&[2, 1, 8, 8], 36);
    let k = randn(&[3, 1, 3, 3], 361);
    let gamma = randn(&[12], 362);
    let beta = randn(&[12], 363);
    check_weighted(
        "conv -> reflection pad -> relu -> max pool -> upsample -> strided pool -> layer norm -> log_softmax",
        |x| {
            let c = layers::reflection_pad2d(x, 1)?.conv2d(&k, 0, 1, 1, 1)?; // (2,3,8,8)
            let h = layers::relu(&c)?;
            let p = layers::max_pool2d(&h, 2)?; // (2,3,4,4)
            let u = layers::upsample_nearest2d(&p, 2)?; // (2,3,8,8)
            // Skip connection. `tanh(c)` rather than `h`: relu zeros plus the block-constant `u` would
            // create exact ties in the next max pool, where candle's `max` backward gives the full
            // gradient to every tied element (the documented tie convention) and finite differences
            // disagree.
            let h = (c.tanh()? + u)?;
            let h = layers::max_pool2d_strided(&h, 3, 2, 1)?; // (2,3,4,4)
            let h = layers::upsample_bilinear2d(&h, 2, 2)?; // (2,3,2,2)
            let h = layers::layer_norm(&layers::flatten(&h)?, &gamma, &beta, 1e-5)?; // (2,12)
            layers::log_softmax(&h, 1)
        },
        &x,
        36,
    );
}

// ------------------------------------------------------------------------------------------------
// linear layers are exactly adjoint to their backward

#[test]
fn linear_layers_pass_the_adjoint_check() {
    type Layer = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor>>;
    let cases: Vec<(&str, Vec<usize>, Layer)> = vec![
        (
            "upsample_bilinear2d",
            vec![1, 2, 3, 5],
            Box::new(|x| layers::upsample_bilinear2d(x, 7, 4)),
        ),
        (
            "upsample_nearest2d",
            vec![1, 2, 3, 3],
            Box::new(|x| layers::upsample_nearest2d(x, 2)),
        ),
        (
            "avg_pool2d",
            vec![2, 1, 6, 7],
            Box::new(|x| layers::avg_pool2d(x, 2)),
        ),
        (
            "avg_pool2d_strided",
            vec![1, 2, 5, 5],
            Box::new(|x| layers::avg_pool2d_strided(x, 3, 2, 1, false)),
        ),
        (
            "reflection_pad2d",
            vec![1, 1, 4, 5],
            Box::new(|x| layers::reflection_pad2d(x, 2)),
        ),
        (
            "global_avg_pool2d",
            vec![2, 3, 4, 4],
            Box::new(layers::global_avg_pool2d),
        ),
    ];
    for (name, shape, f) in cases {
        let out_shape = f(&randn(&shape, 0)).unwrap().dims().to_vec();
        let zero = Tensor::zeros(shape.as_slice(), DType::F64, &Device::Cpu).unwrap();
        let err = adjoint_check(
            |v| f(v),
            |u| vjp(&f, &zero, u).map_err(candle_core::Error::wrap),
            &shape,
            &out_shape,
            DType::F64,
            37,
        )
        .unwrap();
        eprintln!("adjoint_check {name}: {err:.3e}");
        assert!(err < 1e-12, "{name}: {err}");
    }
}

#[test]
fn layers_work_in_f32() {
    let x = randn(&[1, 2, 6, 6], 38).to_dtype(DType::F32).unwrap();
    assert_eq!(layers::max_pool2d(&x, 2).unwrap().dims(), &[1, 2, 3, 3]);
    assert_eq!(
        layers::max_pool2d_strided(&x, 3, 2, 1).unwrap().dims(),
        &[1, 2, 3, 3]
    );
    assert_eq!(
        layers::avg_pool2d_strided(&x, 3, 1, 1, false)
            .unwrap()
            .dims(),
        &[1, 2, 6, 6]
    );
    assert_eq!(
        layers::upsample_bilinear2d(&x, 9, 4).unwrap().dtype(),
        DType::F32
    );
    let g = input_gradient(|x| layers::max_pool2d_strided(x, 3, 2, 1), &x).unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert!(flat(&g).iter().all(|v| v.is_finite()));
}
