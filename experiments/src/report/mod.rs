//! Report output: SVG figures ([`plot`]), captioned image grids ([`grid`], drawn with the bitmap font
//! [`font`]) and image renderings ([`hog`]).

pub mod font;
pub mod grid;
pub mod hog;
pub mod plot;
