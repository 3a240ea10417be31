//! Report output: SVG figures ([`plot`]) and image renderings ([`hog`]).

pub mod hog;
pub mod plot;
