//! Checks and helpers for dense tensors (`ndarray::ArrayD<f64>`, read in C order).

use std::borrow::Cow;

use ndarray::ArrayD;

use crate::{Result, TdError};

/// Checks that `shape` has at least `min_modes` modes and no mode of size 0; `name` is the argument.
pub(crate) fn check_shape(shape: &[usize], min_modes: usize, name: &str) -> Result<()> {
    if shape.len() < min_modes {
        return Err(TdError::invalid(
            name,
            format!(
                "needs at least {min_modes} mode(s), got a {}-D tensor of shape {shape:?}",
                shape.len()
            ),
        ));
    }
    if let Some(k) = shape.iter().position(|&n| n == 0) {
        return Err(TdError::invalid(
            name,
            format!("mode {k} has size 0 (shape {shape:?}); every mode needs at least one index"),
        ));
    }
    Ok(())
}

/// The tensor's entries in C order (borrowed when the array is already standard-layout).
pub(crate) fn c_order(t: &ArrayD<f64>) -> Cow<'_, [f64]> {
    match t.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.iter().copied().collect()),
    }
}

/// The index of the first non-finite entry, as an error naming `name`.
pub(crate) fn check_finite(data: &[f64], name: &str) -> Result<()> {
    match data.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(TdError::NonFinite {
            name: name.to_string(),
            index,
            value: data[index],
        }),
        None => Ok(()),
    }
}

/// Frobenius norm of `data`, checking finiteness in the same pass: a finite sum of squares proves every
/// entry finite; otherwise the non-finite entry is reported, or (all finite but the squares overflow) the
/// norm is recomputed with scaling.
pub(crate) fn checked_norm(data: &[f64], name: &str) -> Result<f64> {
    let s: f64 = data.iter().map(|x| x * x).sum();
    if s.is_finite() {
        return Ok(s.sqrt());
    }
    check_finite(data, name)?;
    Ok(scaled_norm(data))
}

/// Overflow-safe Frobenius norm: `max|x| · sqrt(Σ (x/max|x|)²)`.
pub(crate) fn scaled_norm(data: &[f64]) -> f64 {
    let amax = data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if amax == 0.0 || !amax.is_finite() {
        return amax;
    }
    amax * data
        .iter()
        .map(|x| (x / amax) * (x / amax))
        .sum::<f64>()
        .sqrt()
}

/// Frobenius norm without checks (overflow-safe).
pub(crate) fn norm(data: &[f64]) -> f64 {
    let s: f64 = data.iter().map(|x| x * x).sum();
    if s.is_finite() && s > 1e-290 {
        s.sqrt()
    } else {
        scaled_norm(data)
    }
}

/// Validates a dense input tensor: shape (at least `min_modes` modes, none of size 0) and entries
/// (finite); returns its C-order data and Frobenius norm.
pub(crate) fn validated<'a>(
    t: &'a ArrayD<f64>,
    min_modes: usize,
    name: &str,
) -> Result<(Cow<'a, [f64]>, f64)> {
    check_shape(t.shape(), min_modes, name)?;
    let data = c_order(t);
    let nrm = checked_norm(&data, name)?;
    Ok((data, nrm))
}

/// Product of `dims`, or an error naming `name` when it overflows `usize`.
pub(crate) fn checked_numel(dims: &[usize], name: &str) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| {
            TdError::invalid(
                name,
                format!("shape {dims:?} has more elements than fit in memory"),
            )
        })
}

/// Relative Frobenius distance `‖a − b‖ / ‖a‖` of two equally long buffers (`‖a − b‖` when `a = 0`).
pub fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let na = norm(a);
    let nd = norm(&diff);
    if na == 0.0 { nd } else { nd / na }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_overflow_safe_and_nan_reported() {
        assert_eq!(checked_norm(&[3.0, 4.0], "t").unwrap(), 5.0);
        let big = [3e200, 4e200];
        assert!((checked_norm(&big, "t").unwrap() / 5e200 - 1.0).abs() < 1e-15);
        let err = checked_norm(&[1.0, f64::NAN], "T").unwrap_err().to_string();
        assert!(err.contains("`T`") && err.contains("index 1"), "{err}");
        let err = check_shape(&[3, 0, 2], 1, "tensor")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode 1 has size 0"), "{err}");
        assert!(check_shape(&[4], 2, "tensor").is_err());
    }

    #[test]
    fn relative_error_by_hand() {
        assert!((relative_error(&[3.0, 4.0], &[3.0, 3.0]) - 0.2).abs() < 1e-15);
    }
}
