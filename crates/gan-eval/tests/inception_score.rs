//! Inception Score: hand-computed values, split boundaries, bad input.

use gan_eval::inception_score::inception_score;
use ndarray::Array2;

fn one_hot(labels: &[usize], c: usize) -> Array2<f64> {
    Array2::from_shape_fn(
        (labels.len(), c),
        |(i, j)| {
            if labels[i] == j { 1.0 } else { 0.0 }
        },
    )
}

#[test]
fn uniform_predictions_score_one() {
    let p = Array2::from_elem((50, 8), 1.0 / 8.0);
    let is = inception_score(p.view(), 10).unwrap();
    assert!((is.mean - 1.0).abs() < 1e-12 && is.std < 1e-12, "{is:?}");
}

#[test]
fn confident_balanced_predictions_score_the_class_count() {
    let labels: Vec<usize> = (0..100).map(|i| i % 10).collect();
    let is = inception_score(one_hot(&labels, 10).view(), 10).unwrap();
    assert!((is.mean - 10.0).abs() < 1e-12 && is.std < 1e-12, "{is:?}");
    // Confident but collapsed onto one class: 1.
    let is = inception_score(one_hot(&[3; 40], 10).view(), 4).unwrap();
    assert!((is.mean - 1.0).abs() < 1e-12);
}

#[test]
fn uneven_splits_use_integer_boundaries() {
    // N = 23, 10 splits: boundaries ⌊23i/10⌋ = 0,2,4,6,9,11,13,16,18,20,23, so parts of 2,2,2,3,2,2,3,2,2,3
    // rows. Labels i mod 3 are one-hot, so a part's score is exp(entropy of its class histogram): 2 for a
    // part of two consecutive rows, 3 for three.
    let labels: Vec<usize> = (0..23).map(|i| i % 3).collect();
    let is = inception_score(one_hot(&labels, 3).view(), 10).unwrap();
    let expected = [2.0, 2.0, 2.0, 3.0, 2.0, 2.0, 3.0, 2.0, 2.0, 3.0];
    for (k, (a, b)) in is.split_scores.iter().zip(expected).enumerate() {
        assert!((a - b).abs() < 1e-12, "split {k}: {a} vs {b}");
    }
    assert!((is.mean - 2.3).abs() < 1e-12);
    assert!((is.std - 0.21f64.sqrt()).abs() < 1e-12, "std {}", is.std);
}

#[test]
fn kl_form_on_a_hand_computed_case() {
    // Two rows p1 = (0.9, 0.1), p2 = (0.1, 0.9): p(y) = (0.5, 0.5); KL = 0.9 ln 1.8 + 0.1 ln 0.2 each.
    let p = Array2::from_shape_vec((2, 2), vec![0.9, 0.1, 0.1, 0.9]).unwrap();
    let is = inception_score(p.view(), 1).unwrap();
    let kl: f64 = 0.9 * 1.8f64.ln() + 0.1 * 0.2f64.ln();
    assert!((is.mean - kl.exp()).abs() < 1e-12);
}

#[test]
fn bad_input_is_a_clear_error() {
    let logits = Array2::from_shape_vec((2, 2), vec![2.0, -1.0, 0.5, 0.5]).unwrap();
    let e = inception_score(logits.view(), 1).unwrap_err().to_string();
    assert!(e.contains("probs"), "{e}");
    let off = Array2::from_shape_vec((2, 2), vec![0.5, 0.4, 0.5, 0.5]).unwrap();
    let e = inception_score(off.view(), 1).unwrap_err().to_string();
    assert!(e.contains("row 0 sums to"), "{e}");
    let neg = Array2::from_shape_vec((1, 2), vec![1.5, -0.5]).unwrap();
    assert!(inception_score(neg.view(), 1).is_err());
    let nan = Array2::from_shape_vec((1, 2), vec![f64::NAN, 1.0]).unwrap();
    assert!(inception_score(nan.view(), 1).is_err());
    let ok = Array2::from_elem((5, 2), 0.5);
    assert!(
        inception_score(ok.view(), 6)
            .unwrap_err()
            .to_string()
            .contains("splits")
    );
    assert!(inception_score(ok.view(), 0).is_err());
}
