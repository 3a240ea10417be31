//! Non-local means against scikit-image 0.26's `denoise_nl_means(…, fast_mode=True)` on the fixture that
//! `benches/peers/denoise.py fixtures` writes: small images (RGB and grey, σ known and not, an even patch
//! size, a padding wider than the image), compared value by value.

use candle_core::{Device, Tensor};
use generalization::dip::baselines::{NlMeansParams, nl_means};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    skimage: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    shape: [usize; 3],
    patch_size: usize,
    patch_distance: usize,
    h: f64,
    sigma: f64,
    input: Vec<f64>,
    output: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("data/nl_means.json"))
        .expect("tests/data/nl_means.json parses")
}

#[test]
fn nl_means_equals_scikit_image() -> generalization::Result<()> {
    let fx = fixture();
    assert_eq!(fx.skimage, "0.26.0");
    assert_eq!(fx.cases.len(), 4);
    for case in &fx.cases {
        let input: Vec<f32> = case.input.iter().map(|&v| v as f32).collect();
        let x = Tensor::from_vec(input, case.shape.to_vec(), &Device::Cpu)?;
        let params = NlMeansParams {
            patch_size: case.patch_size,
            patch_distance: case.patch_distance,
            h: case.h,
            sigma: case.sigma,
        };
        let got = nl_means(&x, params)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(got.len(), case.output.len(), "{}", case.name);
        let mut moved = 0usize;
        for (k, (&g, &want)) in got.iter().zip(&case.output).enumerate() {
            // scikit-image returns f64; ours is that value rounded to f32.
            assert!(
                (g as f64 - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{} value {k}: {g} vs scikit-image {want}",
                case.name
            );
            moved += usize::from((want - case.input[k]).abs() > 1e-3);
        }
        // The fixture is not the identity: most pixels change.
        assert!(
            moved * 2 > got.len(),
            "{}: only {moved} pixels moved",
            case.name
        );
    }
    Ok(())
}

#[test]
fn nl_means_keeps_a_constant_image_and_refuses_bad_parameters() -> generalization::Result<()> {
    let x = Tensor::full(0.25f32, (2, 6, 5), &Device::Cpu)?;
    let y = nl_means(&x, NlMeansParams::default())?;
    let v = y.flatten_all()?.to_vec1::<f32>()?;
    assert!(v.iter().all(|&v| (v - 0.25).abs() < 1e-7), "{v:?}");
    for bad in [
        NlMeansParams {
            h: 0.0,
            ..Default::default()
        },
        NlMeansParams {
            sigma: -0.1,
            ..Default::default()
        },
        NlMeansParams {
            patch_size: 0,
            ..Default::default()
        },
    ] {
        let err = nl_means(&x, bad).unwrap_err().to_string();
        assert!(err.contains("must"), "{err}");
    }
    Ok(())
}
