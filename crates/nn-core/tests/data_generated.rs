//! The generated digits: deterministic, in range, balanced, and learnable but not trivial.

use candle_core::{D, Tensor};
use nn_core::data::{
    DataLocator, DatasetName, Provenance, generated_digits, generated_train_test, load_dataset,
};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = generated_digits(50, 7).unwrap();
    let b = generated_digits(50, 7).unwrap();
    let c = generated_digits(50, 8).unwrap();
    assert_eq!(max_abs_diff(&a.images, &b.images), 0.0);
    assert_eq!(a.labels_vec().unwrap(), b.labels_vec().unwrap());
    assert!(max_abs_diff(&a.images, &c.images) > 0.5);
    assert_ne!(a.labels_vec().unwrap(), c.labels_vec().unwrap());
}

#[test]
fn shape_range_names_and_balance() {
    let d = generated_digits(200, 1).unwrap();
    assert_eq!(d.images.dims(), &[200, 1, 28, 28]);
    assert_eq!(d.name, "generated");
    assert_eq!(d.provenance, Provenance::Generated);
    assert_eq!(
        d.classes,
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let (lo, hi) = (
        d.images.min_all().unwrap().to_scalar::<f32>().unwrap(),
        d.images.max_all().unwrap().to_scalar::<f32>().unwrap(),
    );
    assert!(lo >= 0.0 && hi <= 1.0 && hi > 0.9, "range [{lo}, {hi}]");
    let labels = d.labels_vec().unwrap();
    for c in 0..10 {
        assert_eq!(labels.iter().filter(|&&l| l == c).count(), 20, "class {c}");
    }
    // Shuffled, not in 0, 1, 2, ... order.
    assert_ne!(labels[..10], (0..10).collect::<Vec<u32>>()[..]);
    // Ink covers a plausible share of the image (MNIST: about 13% mean intensity).
    let mean = d.images.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((0.05..0.3).contains(&mean), "mean intensity {mean}");
    assert!(
        generated_digits(0, 1)
            .unwrap_err()
            .to_string()
            .contains("`n`")
    );
}

#[test]
fn train_and_test_come_from_different_seeds() {
    let tt = generated_train_test(30, 20, 3).unwrap();
    assert_eq!((tt.train.len(), tt.test.len()), (30, 20));
    assert_eq!(
        (tt.train.name.as_str(), tt.test.name.as_str()),
        ("generated/train", "generated/test")
    );
    let first = generated_digits(20, 3).unwrap();
    assert!(max_abs_diff(&first.images, &tt.test.images) > 0.5);
    assert_eq!(
        max_abs_diff(&tt.train.images, &generated_digits(30, 3).unwrap().images),
        0.0
    );
    let full = load_dataset(DatasetName::Generated, &DataLocator::default()).unwrap();
    assert_eq!((full.train.len(), full.test.len()), (10_000, 2_000));
    assert_eq!(full.train.provenance, Provenance::Generated);
}

/// Accuracy of predicting each test image's label from the `[N, K]` scores (argmax).
fn accuracy(scores: &Tensor, labels: &[u32]) -> f32 {
    let pred = scores.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f32 / labels.len() as f32
}

#[test]
fn learnable_by_nearest_neighbour_but_not_by_class_means() {
    let tt = generated_train_test(3_000, 500, 11).unwrap();
    let x = tt.train.images.flatten_from(1).unwrap();
    let xt = tt.test.images.flatten_from(1).unwrap();
    let (yl, ytl) = (
        tt.train.labels_vec().unwrap(),
        tt.test.labels_vec().unwrap(),
    );
    // -|a - b|² up to a per-row constant: 2 a·b - |b|².
    let neg_dist = |a: &Tensor, b: &Tensor| -> Tensor {
        let dot = a.matmul(&b.t().unwrap()).unwrap().affine(2.0, 0.0).unwrap();
        let nb = b.sqr().unwrap().sum(1).unwrap().unsqueeze(0).unwrap();
        dot.broadcast_sub(&nb).unwrap()
    };
    // Nearest class mean.
    let means: Vec<Tensor> = (0..10u32)
        .map(|c| {
            let idx: Vec<usize> = (0..yl.len()).filter(|&i| yl[i] == c).collect();
            tt.train
                .subset(&idx)
                .unwrap()
                .images
                .flatten_from(1)
                .unwrap()
                .mean(0)
                .unwrap()
        })
        .collect();
    let means = Tensor::stack(&means, 0).unwrap();
    let centroid = accuracy(&neg_dist(&xt, &means), &ytl);
    // One nearest neighbour: scores are -distance to each training image; map the argmax to its label.
    let nn = neg_dist(&xt, &x)
        .argmax(1)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    let one_nn = nn
        .iter()
        .zip(&ytl)
        .filter(|(i, l)| yl[**i as usize] == **l)
        .count() as f32
        / ytl.len() as f32;
    assert!(one_nn > 0.9, "1-NN accuracy {one_nn}");
    assert!(
        centroid > 0.4 && centroid < 0.9,
        "nearest-class-mean accuracy {centroid}"
    );
}
